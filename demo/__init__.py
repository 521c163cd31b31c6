"""The embedded mode's demo data (`manage.py createdemo`), at the project level.

Demo data spans every app (chat users and contacts, official accounts, gray-release
features), so it lives above all of them: this package may import any app, and no
app imports it. It has no models.
"""

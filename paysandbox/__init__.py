"""A local stand-in for the payment provider: a small HTTP service speaking WeChat Pay
API v2 (signed XML), outside the product (docs/wallet.md).

    python -m paysandbox --port 8090          # the merchant key from $PAY_MCH_KEY

It places orders (/pay/unifiedorder) with a visible pay page, notifies the
merchant's notify_url (signed, retried with backoff until acknowledged with
return_code SUCCESS), answers order queries and closes orders, and pays users
(企业付款: /mmpaymkttransfers/promotion/transfers and gettransferinfo). A small
JSON control API under /sandbox/ lets tests inject faults over HTTP: drop or
duplicate notifications, refuse transfers, leave their outcome unknown.

It imports nothing of the product and keeps its state in memory.
"""

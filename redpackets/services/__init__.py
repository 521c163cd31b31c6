"""Writes of red packets, one module per step: sending, grabbing, crediting,
refunds, reconciliation; updates writes the bubble's state into sync logs."""

"""Money: wallets on a double-entry ledger, top-ups and withdrawals through the
payment provider, and reconciliation (docs/wallet.md). Red packets and shake
activities move their money through this app's ledger services."""

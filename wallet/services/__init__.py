"""The wallet's writes: the ledger primitive and accounts (`ledger`), moves in and
out of users' wallets for other apps (`wallets`), top-ups and withdrawals."""

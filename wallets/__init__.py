"""The point ledger (Measures art. 20-23): wallets, point lots, holds, hold draws and the wallet
journal. Only this package reads or writes those tables; mall, reductions, expiry and the API call
its functions.

By verb: models.py (the tables), validity.py (points valid at most 10 years), lock.py (the wallet
row lock and the lock order), credit.py (crediting; operators cannot debit), hold.py (setting
points aside), post.py (cancellation (注销) of used points), release.py (a hold given back),
expire.py (expiry and its notices), jobs.py (the expiry sweep), read.py (wallet views), audit.py
(totals and the audit from the journal)."""

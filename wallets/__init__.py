"""The point ledger (Measures art. 20-23): wallets, point lots, holds, hold draws and the wallet
journal. Only this package reads or writes those tables; mall, reductions, expiry and the API call
its functions."""

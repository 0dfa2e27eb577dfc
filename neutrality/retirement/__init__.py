"""Voluntary carbon neutrality (自愿实施碳中和, art. 19): a holder retires (注销) its CERs for a named
beneficiary (retirements.py) and gets, in the same transaction, a numbered carbon-neutral
certificate signed with Ed25519 that anyone can verify (certificates.py), printable as a PDF
(certificate_pdf.py); models.py holds their tables."""

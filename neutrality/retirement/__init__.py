"""Voluntary carbon neutrality (自愿实施碳中和, art. 19): a holder applies to retire (注销) its CERs for a
named beneficiary (retirements.py); the tonnes are held for review and retired after it (经审核后予以注销):
a neutrality reviewer approves or rejects, or the regulator's auto-approval policy approves at once
(review.py). Approval issues, in the same transaction, a numbered carbon-neutral certificate signed
with Ed25519 that anyone can verify (certificates.py), printable as a PDF (certificate_pdf.py), and
which the regulator may revoke (review.py); models.py holds their tables."""

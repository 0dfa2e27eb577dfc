"""The CER registry (核证减排量, art. 14-17, 29): a reduction project is registered, put on public
notice for 7 working days (notice.py, on China's official working-day calendar), declared, verified
and filed by the regulator (projects.py), who then issues its CERs as serial blocks and may cancel
them; serial blocks (blocks.py) are the one primitive that moves CERs, each act journalled so any
tonne traces from issuance on; registry.py is the public registry, the trace of a tonne, a holder's
CER account and the regulator's conservation audit; models.py holds their tables."""

"""Carbon neutrality with certified emission reductions (CER, art. 14-19), in three parts: the CER
registry (cers/), the CER market (market/) and retirement for carbon neutrality (retirement/)."""

"""Carbon-inclusion scenarios (碳普惠场景, art. 25-28) and their marks (标识)."""

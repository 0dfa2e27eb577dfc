# the measures front-end contracts, each run by hash in test_measures_period.py
# (tests/api/test_frontend_contracts.py leaves them to it)
MEASURES_CONTRACTS = {"MeasuresInForce", "MeasuresVersions", "EnterMeasuresVersion"}

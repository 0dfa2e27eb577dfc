"""Supervision (Measures art. 30-32): violations and credit records, suspensions that end by
themselves and revocations, and the regulator's inspections.

models.py the tables; errors.py the codes; standing.py the standing of an organisation in a role
(the cheap check the hot paths make) and its effect on listings; violations.py the credit record;
inspections.py inspections and their follow-ups."""

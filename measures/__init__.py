"""The Measures themselves (art. 33): which version of the rules governs on a day, and its successor."""

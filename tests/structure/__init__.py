"""Tests of the house itself: layers, error-code enums, migrations, .sql sources, table ownership."""

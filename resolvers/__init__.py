"""One module per area: check permission (declared on the field), call the domain, map to schema types."""

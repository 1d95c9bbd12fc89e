"""Who may see what: policy resolution independent of SQL (grants, tag grants, masks, row
filters), shared by validation, the query layer, the access matrix and the catalog."""

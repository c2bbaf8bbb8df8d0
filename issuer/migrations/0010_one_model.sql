-- One data model: the command line's products now live in org_products of
-- the default organisation, like the service's (Store::fold_into_orgs
-- copied them there before this runs, and gave every license an
-- org_licenses row).
DROP TABLE products;

-- The restricted consumer eu_marketing_analyst, written by hand on raw DuckDB: the same row
-- filters and masks as domains/mesh.yaml, over the raw tables in schema "raw". :key is the
-- mesh key in hex (Workspace.mesh_key()), bound as a literal by the benchmark.
-- Grants: customer_profiles minus c_acctbal, order_history; no supply table.
--
-- Each row-filtered view is a plain WHERE: the speed target of meshsim's row filters (issue 16).
-- It is only safe for queries whose predicates cannot fail on a hidden row's value, which is
-- when meshsim runs a plain WHERE too (meshsim/query/fallible.py; the benchmark's restricted
-- queries are all such queries); for the others meshsim gates every value.

-- regional_customers: customers of the consumer's region. Masks: c_name keyed hash
-- (pii_keyed_hash), c_address redacted, c_phone last 4 (first matching mask wins).
CREATE VIEW customer.customer AS
SELECT
    c.c_custkey,
    CAST(
        sha256(:key || '|customer.customer.c_name|' || CAST(c.c_name AS VARCHAR)) AS VARCHAR
    ) AS c_name,
    CAST('****' AS VARCHAR) AS c_address,
    c.c_nationkey,
    CAST(
        '****' || lpad(right(coalesce(c.c_phone, ''), 4), 4, '*') AS VARCHAR
    ) AS c_phone,
    c.c_mktsegment,
    c.c_comment
FROM raw.customer_customer AS c
WHERE c.c_nationkey IN (
    SELECT n.n_nationkey
    FROM raw.customer_nation AS n
    JOIN raw.customer_region AS r ON n.n_regionkey = r.r_regionkey
    WHERE r.r_name = 'EUROPE'
);

CREATE VIEW customer.nation AS SELECT * FROM raw.customer_nation;

CREATE VIEW customer.region AS SELECT * FROM raw.customer_region;

-- regional_orders: orders of customers in the consumer's region.
CREATE VIEW sales.orders AS
SELECT o.*
FROM raw.sales_orders AS o
WHERE o.o_custkey IN (
    SELECT c.c_custkey
    FROM raw.customer_customer AS c
    JOIN raw.customer_nation AS n ON c.c_nationkey = n.n_nationkey
    JOIN raw.customer_region AS r ON n.n_regionkey = r.r_regionkey
    WHERE r.r_name = 'EUROPE'
);

-- regional_lineitems: line items of those orders.
CREATE VIEW sales.lineitem AS
SELECT l.*
FROM raw.sales_lineitem AS l
WHERE l.l_orderkey IN (
    SELECT o.o_orderkey
    FROM raw.sales_orders AS o
    JOIN raw.customer_customer AS c ON o.o_custkey = c.c_custkey
    JOIN raw.customer_nation AS n ON c.c_nationkey = n.n_nationkey
    JOIN raw.customer_region AS r ON n.n_regionkey = r.r_regionkey
    WHERE r.r_name = 'EUROPE'
);

-- The restricted consumer eu_marketing_analyst, written by hand on raw DuckDB: the same row
-- filters and masks as domains/mesh.yaml, over the raw tables in schema "raw". :key is the
-- mesh key in hex (Workspace.mesh_key()), bound as a literal by the benchmark.
-- Grants: customer_profiles minus c_acctbal, order_history; no supply table.
--
-- Like meshsim's governed scans, every row-filtered view computes its filter as a flag and
-- returns each value as CASE WHEN flag THEN value END: DuckDB may run a query's predicates
-- before the filter, and a predicate that fails on a hidden row's value would reveal that the
-- row exists (GOVERNANCE.md, attack class 9). A plain WHERE is not the equivalent query.

-- regional_customers: customers of the consumer's region. Masks: c_name keyed hash
-- (pii_keyed_hash), c_address redacted, c_phone last 4 (first matching mask wins).
CREATE VIEW customer.customer AS
SELECT
    CASE WHEN c.visible THEN c.c_custkey END AS c_custkey,
    CASE WHEN c.visible THEN CAST(
        sha256(:key || '|customer.customer.c_name|' || CAST(c.c_name AS VARCHAR)) AS VARCHAR
    ) END AS c_name,
    CASE WHEN c.visible THEN CAST('****' AS VARCHAR) END AS c_address,
    CASE WHEN c.visible THEN c.c_nationkey END AS c_nationkey,
    CASE WHEN c.visible THEN CAST(
        '****' || lpad(right(coalesce(c.c_phone, ''), 4), 4, '*') AS VARCHAR
    ) END AS c_phone,
    CASE WHEN c.visible THEN c.c_mktsegment END AS c_mktsegment,
    CASE WHEN c.visible THEN c.c_comment END AS c_comment
FROM (
    SELECT raw_c.*, raw_c.c_nationkey IN (
        SELECT n.n_nationkey
        FROM raw.customer_nation AS n
        JOIN raw.customer_region AS r ON n.n_regionkey = r.r_regionkey
        WHERE r.r_name = 'EUROPE'
    ) AS visible
    FROM raw.customer_customer AS raw_c
) AS c
WHERE c.visible;

CREATE VIEW customer.nation AS SELECT * FROM raw.customer_nation;

CREATE VIEW customer.region AS SELECT * FROM raw.customer_region;

-- regional_orders: orders of customers in the consumer's region.
CREATE VIEW sales.orders AS
SELECT
    CASE WHEN o.visible THEN o.o_orderkey END AS o_orderkey,
    CASE WHEN o.visible THEN o.o_custkey END AS o_custkey,
    CASE WHEN o.visible THEN o.o_orderstatus END AS o_orderstatus,
    CASE WHEN o.visible THEN o.o_totalprice END AS o_totalprice,
    CASE WHEN o.visible THEN o.o_orderdate END AS o_orderdate,
    CASE WHEN o.visible THEN o.o_orderpriority END AS o_orderpriority,
    CASE WHEN o.visible THEN o.o_clerk END AS o_clerk,
    CASE WHEN o.visible THEN o.o_shippriority END AS o_shippriority,
    CASE WHEN o.visible THEN o.o_comment END AS o_comment
FROM (
    SELECT raw_o.*, raw_o.o_custkey IN (
        SELECT c.c_custkey
        FROM raw.customer_customer AS c
        JOIN raw.customer_nation AS n ON c.c_nationkey = n.n_nationkey
        JOIN raw.customer_region AS r ON n.n_regionkey = r.r_regionkey
        WHERE r.r_name = 'EUROPE'
    ) AS visible
    FROM raw.sales_orders AS raw_o
) AS o
WHERE o.visible;

-- regional_lineitems: line items of those orders.
CREATE VIEW sales.lineitem AS
SELECT
    CASE WHEN l.visible THEN l.l_orderkey END AS l_orderkey,
    CASE WHEN l.visible THEN l.l_partkey END AS l_partkey,
    CASE WHEN l.visible THEN l.l_suppkey END AS l_suppkey,
    CASE WHEN l.visible THEN l.l_linenumber END AS l_linenumber,
    CASE WHEN l.visible THEN l.l_quantity END AS l_quantity,
    CASE WHEN l.visible THEN l.l_extendedprice END AS l_extendedprice,
    CASE WHEN l.visible THEN l.l_discount END AS l_discount,
    CASE WHEN l.visible THEN l.l_tax END AS l_tax,
    CASE WHEN l.visible THEN l.l_returnflag END AS l_returnflag,
    CASE WHEN l.visible THEN l.l_linestatus END AS l_linestatus,
    CASE WHEN l.visible THEN l.l_shipdate END AS l_shipdate,
    CASE WHEN l.visible THEN l.l_commitdate END AS l_commitdate,
    CASE WHEN l.visible THEN l.l_receiptdate END AS l_receiptdate,
    CASE WHEN l.visible THEN l.l_shipinstruct END AS l_shipinstruct,
    CASE WHEN l.visible THEN l.l_shipmode END AS l_shipmode,
    CASE WHEN l.visible THEN l.l_comment END AS l_comment
FROM (
    SELECT raw_l.*, raw_l.l_orderkey IN (
        SELECT o.o_orderkey
        FROM raw.sales_orders AS o
        JOIN raw.customer_customer AS c ON o.o_custkey = c.c_custkey
        JOIN raw.customer_nation AS n ON c.c_nationkey = n.n_nationkey
        JOIN raw.customer_region AS r ON n.n_regionkey = r.r_regionkey
        WHERE r.r_name = 'EUROPE'
    ) AS visible
    FROM raw.sales_lineitem AS raw_l
) AS l
WHERE l.visible;

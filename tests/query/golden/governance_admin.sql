-- SELECT c_name, c_phone, c_acctbal FROM customer.customer
SELECT
  "customer"."c_name" AS "c_name",
  "customer"."c_phone" AS "c_phone",
  "customer"."c_acctbal" AS "c_acctbal"
FROM (
  SELECT
    "__meshsim_raw"."c_custkey" AS "c_custkey",
    "__meshsim_raw"."c_name" AS "c_name",
    "__meshsim_raw"."c_address" AS "c_address",
    "__meshsim_raw"."c_nationkey" AS "c_nationkey",
    "__meshsim_raw"."c_phone" AS "c_phone",
    "__meshsim_raw"."c_acctbal" AS "c_acctbal",
    "__meshsim_raw"."c_mktsegment" AS "c_mktsegment",
    "__meshsim_raw"."c_comment" AS "c_comment"
  FROM (
    SELECT
      *
    FROM "<customer.customer v0: 1 file>"
  ) AS "__meshsim_raw"
) AS "customer"

-- SELECT count(*) FROM sales.orders
SELECT
  COUNT(*) AS "count_star()"
FROM (
  SELECT
    "__meshsim_raw"."o_orderkey" AS "o_orderkey",
    "__meshsim_raw"."o_custkey" AS "o_custkey",
    "__meshsim_raw"."o_orderstatus" AS "o_orderstatus",
    "__meshsim_raw"."o_totalprice" AS "o_totalprice",
    "__meshsim_raw"."o_orderdate" AS "o_orderdate",
    "__meshsim_raw"."o_orderpriority" AS "o_orderpriority",
    "__meshsim_raw"."o_clerk" AS "o_clerk",
    "__meshsim_raw"."o_shippriority" AS "o_shippriority",
    "__meshsim_raw"."o_comment" AS "o_comment"
  FROM (
    SELECT
      *
    FROM "<sales.orders v1: 2 files>"
  ) AS "__meshsim_raw"
) AS "orders"

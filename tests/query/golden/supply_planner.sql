-- SELECT s_name, s_phone, s_address FROM supply.supplier
SELECT
  "supplier"."s_name" AS "s_name",
  "supplier"."s_phone" AS "s_phone",
  "supplier"."s_address" AS "s_address"
FROM (
  SELECT
    "__meshsim_raw"."s_suppkey" AS "s_suppkey",
    "__meshsim_raw"."s_name" AS "s_name",
    CAST(SHA256(
      '<mesh-key>|supply.supplier.s_address|' || CAST("__meshsim_raw"."s_address" AS TEXT)
    ) AS TEXT) AS "s_address",
    "__meshsim_raw"."s_nationkey" AS "s_nationkey",
    CAST(SHA256('<mesh-key>|supply.supplier.s_phone|' || CAST("__meshsim_raw"."s_phone" AS TEXT)) AS TEXT) AS "s_phone",
    "__meshsim_raw"."s_comment" AS "s_comment"
  FROM (
    SELECT
      *
    FROM "<supply.supplier v0: 1 file>"
  ) AS "__meshsim_raw"
) AS "supplier"

-- SELECT l_partkey, l_quantity FROM sales.lineitem
SELECT
  "lineitem"."l_partkey" AS "l_partkey",
  "lineitem"."l_quantity" AS "l_quantity"
FROM (
  SELECT
    "__meshsim_raw"."l_orderkey" AS "l_orderkey",
    "__meshsim_raw"."l_partkey" AS "l_partkey",
    "__meshsim_raw"."l_suppkey" AS "l_suppkey",
    "__meshsim_raw"."l_linenumber" AS "l_linenumber",
    "__meshsim_raw"."l_quantity" AS "l_quantity",
    "__meshsim_raw"."l_extendedprice" AS "l_extendedprice",
    "__meshsim_raw"."l_discount" AS "l_discount",
    "__meshsim_raw"."l_tax" AS "l_tax",
    "__meshsim_raw"."l_returnflag" AS "l_returnflag",
    "__meshsim_raw"."l_linestatus" AS "l_linestatus",
    "__meshsim_raw"."l_shipdate" AS "l_shipdate",
    "__meshsim_raw"."l_commitdate" AS "l_commitdate",
    "__meshsim_raw"."l_receiptdate" AS "l_receiptdate",
    "__meshsim_raw"."l_shipinstruct" AS "l_shipinstruct",
    "__meshsim_raw"."l_shipmode" AS "l_shipmode",
    "__meshsim_raw"."l_comment" AS "l_comment"
  FROM (
    SELECT
      *
    FROM "<sales.lineitem v0: 1 file>"
  ) AS "__meshsim_raw"
) AS "lineitem"

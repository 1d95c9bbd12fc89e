-- SELECT c_name, c_phone, c_address FROM customer.customer
SELECT
  "customer"."c_name" AS "c_name",
  "customer"."c_phone" AS "c_phone",
  "customer"."c_address" AS "c_address"
FROM (
  SELECT
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN "__meshsim_raw"."c_custkey" END AS "c_custkey",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN CAST(SHA256('<mesh-key>|customer.customer.c_name|' || CAST("__meshsim_raw"."c_name" AS TEXT)) AS TEXT)
    END AS "c_name",
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN CAST('****' AS TEXT) END AS "c_address",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN "__meshsim_raw"."c_nationkey"
    END AS "c_nationkey",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN CAST('****' || LPAD(RIGHT(COALESCE("__meshsim_raw"."c_phone", ''), 4), 4, '*') AS TEXT)
    END AS "c_phone",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN "__meshsim_raw"."c_mktsegment"
    END AS "c_mktsegment",
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN "__meshsim_raw"."c_comment" END AS "c_comment"
  FROM (
    SELECT
      "__meshsim_raw".*,
      (
        "__meshsim_raw"."c_nationkey" IN (
          SELECT
            "n"."n_nationkey" AS "n_nationkey"
          FROM (
            SELECT
              *
            FROM "<customer.nation v0: 1 file>"
          ) AS "n"
          JOIN (
            SELECT
              *
            FROM "<customer.region v0: 1 file>"
          ) AS "r"
            ON "n"."n_regionkey" = "r"."r_regionkey"
          WHERE
            "r"."r_name" = 'EUROPE'
        )
      ) AS "__meshsim_visible"
    FROM (
      SELECT
        *
      FROM "<customer.customer v0: 1 file>"
    ) AS "__meshsim_raw"
  ) AS "__meshsim_raw"
  WHERE
    "__meshsim_raw"."__meshsim_visible"
) AS "customer"

-- SELECT o_orderkey, o_totalprice FROM sales.orders
SELECT
  "orders"."o_orderkey" AS "o_orderkey",
  "orders"."o_totalprice" AS "o_totalprice"
FROM (
  SELECT
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN "__meshsim_raw"."o_orderkey" END AS "o_orderkey",
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN "__meshsim_raw"."o_custkey" END AS "o_custkey",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN "__meshsim_raw"."o_orderstatus"
    END AS "o_orderstatus",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN "__meshsim_raw"."o_totalprice"
    END AS "o_totalprice",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN "__meshsim_raw"."o_orderdate"
    END AS "o_orderdate",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN "__meshsim_raw"."o_orderpriority"
    END AS "o_orderpriority",
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN "__meshsim_raw"."o_clerk" END AS "o_clerk",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN "__meshsim_raw"."o_shippriority"
    END AS "o_shippriority",
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN "__meshsim_raw"."o_comment" END AS "o_comment"
  FROM (
    SELECT
      "__meshsim_raw".*,
      (
        "__meshsim_raw"."o_custkey" IN (
          SELECT
            "c"."c_custkey" AS "c_custkey"
          FROM (
            SELECT
              *
            FROM "<customer.customer v0: 1 file>"
          ) AS "c"
          JOIN (
            SELECT
              *
            FROM "<customer.nation v0: 1 file>"
          ) AS "n"
            ON "c"."c_nationkey" = "n"."n_nationkey"
          JOIN (
            SELECT
              *
            FROM "<customer.region v0: 1 file>"
          ) AS "r"
            ON "n"."n_regionkey" = "r"."r_regionkey"
          WHERE
            "r"."r_name" = 'EUROPE'
        )
      ) AS "__meshsim_visible"
    FROM (
      SELECT
        *
      FROM "<sales.orders v1: 2 files>"
    ) AS "__meshsim_raw"
  ) AS "__meshsim_raw"
  WHERE
    "__meshsim_raw"."__meshsim_visible"
) AS "orders"

-- SELECT l_orderkey, l_extendedprice FROM sales.lineitem
SELECT
  "lineitem"."l_orderkey" AS "l_orderkey",
  "lineitem"."l_extendedprice" AS "l_extendedprice"
FROM (
  SELECT
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN "__meshsim_raw"."l_orderkey" END AS "l_orderkey",
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN "__meshsim_raw"."l_partkey" END AS "l_partkey",
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN "__meshsim_raw"."l_suppkey" END AS "l_suppkey",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN "__meshsim_raw"."l_linenumber"
    END AS "l_linenumber",
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN "__meshsim_raw"."l_quantity" END AS "l_quantity",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN "__meshsim_raw"."l_extendedprice"
    END AS "l_extendedprice",
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN "__meshsim_raw"."l_discount" END AS "l_discount",
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN "__meshsim_raw"."l_tax" END AS "l_tax",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN "__meshsim_raw"."l_returnflag"
    END AS "l_returnflag",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN "__meshsim_raw"."l_linestatus"
    END AS "l_linestatus",
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN "__meshsim_raw"."l_shipdate" END AS "l_shipdate",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN "__meshsim_raw"."l_commitdate"
    END AS "l_commitdate",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN "__meshsim_raw"."l_receiptdate"
    END AS "l_receiptdate",
    CASE
      WHEN "__meshsim_raw"."__meshsim_visible"
      THEN "__meshsim_raw"."l_shipinstruct"
    END AS "l_shipinstruct",
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN "__meshsim_raw"."l_shipmode" END AS "l_shipmode",
    CASE WHEN "__meshsim_raw"."__meshsim_visible" THEN "__meshsim_raw"."l_comment" END AS "l_comment"
  FROM (
    SELECT
      "__meshsim_raw".*,
      (
        "__meshsim_raw"."l_orderkey" IN (
          SELECT
            "o"."o_orderkey" AS "o_orderkey"
          FROM (
            SELECT
              *
            FROM "<sales.orders v1: 2 files>"
          ) AS "o"
          JOIN (
            SELECT
              *
            FROM "<customer.customer v0: 1 file>"
          ) AS "c"
            ON "o"."o_custkey" = "c"."c_custkey"
          JOIN (
            SELECT
              *
            FROM "<customer.nation v0: 1 file>"
          ) AS "n"
            ON "c"."c_nationkey" = "n"."n_nationkey"
          JOIN (
            SELECT
              *
            FROM "<customer.region v0: 1 file>"
          ) AS "r"
            ON "n"."n_regionkey" = "r"."r_regionkey"
          WHERE
            "r"."r_name" = 'EUROPE'
        )
      ) AS "__meshsim_visible"
    FROM (
      SELECT
        *
      FROM "<sales.lineitem v0: 1 file>"
    ) AS "__meshsim_raw"
  ) AS "__meshsim_raw"
  WHERE
    "__meshsim_raw"."__meshsim_visible"
) AS "lineitem"

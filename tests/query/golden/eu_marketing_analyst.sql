-- SELECT c_name, c_phone, c_address FROM customer.customer
SELECT
  "customer"."c_name" AS "c_name",
  "customer"."c_phone" AS "c_phone",
  "customer"."c_address" AS "c_address"
FROM (
  SELECT
    "__meshsim_raw"."c_custkey" AS "c_custkey",
    CAST(SHA256('<mesh-key>|customer.customer.c_name|' || CAST("__meshsim_raw"."c_name" AS TEXT)) AS TEXT) AS "c_name",
    CAST('****' AS TEXT) AS "c_address",
    "__meshsim_raw"."c_nationkey" AS "c_nationkey",
    CAST('****' || LPAD(RIGHT(COALESCE("__meshsim_raw"."c_phone", ''), 4), 4, '*') AS TEXT) AS "c_phone",
    "__meshsim_raw"."c_mktsegment" AS "c_mktsegment",
    "__meshsim_raw"."c_comment" AS "c_comment"
  FROM (
    SELECT
      *
    FROM "<customer.customer v0: 1 file>"
  ) AS "__meshsim_raw"
  WHERE
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
    )
) AS "customer"

-- SELECT o_orderkey, o_totalprice FROM sales.orders
SELECT
  "orders"."o_orderkey" AS "o_orderkey",
  "orders"."o_totalprice" AS "o_totalprice"
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
  WHERE
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
    )
) AS "orders"

-- SELECT l_orderkey, l_extendedprice FROM sales.lineitem
SELECT
  "lineitem"."l_orderkey" AS "l_orderkey",
  "lineitem"."l_extendedprice" AS "l_extendedprice"
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
  WHERE
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
    )
) AS "lineitem"

-- SELECT o_orderkey FROM sales.orders WHERE CAST(o_comment AS INT) = 0
SELECT
  "orders"."o_orderkey" AS "o_orderkey"
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
WHERE
  CAST("orders"."o_comment" AS INT) = 0

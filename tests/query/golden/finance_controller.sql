-- SELECT c_name, c_phone, c_acctbal FROM customer.customer
SELECT
  "customer"."c_name" AS "c_name",
  "customer"."c_phone" AS "c_phone",
  "customer"."c_acctbal" AS "c_acctbal"
FROM (
  SELECT
    "__meshsim_raw"."c_custkey" AS "c_custkey",
    CAST(SHA256('<mesh-key>|customer.customer.c_name|' || CAST("__meshsim_raw"."c_name" AS TEXT)) AS TEXT) AS "c_name",
    CAST(SHA256(
      '<mesh-key>|customer.customer.c_address|' || CAST("__meshsim_raw"."c_address" AS TEXT)
    ) AS TEXT) AS "c_address",
    "__meshsim_raw"."c_nationkey" AS "c_nationkey",
    CAST(SHA256(
      '<mesh-key>|customer.customer.c_phone|' || CAST("__meshsim_raw"."c_phone" AS TEXT)
    ) AS TEXT) AS "c_phone",
    "__meshsim_raw"."c_acctbal" AS "c_acctbal",
    "__meshsim_raw"."c_mktsegment" AS "c_mktsegment",
    "__meshsim_raw"."c_comment" AS "c_comment"
  FROM (
    SELECT
      *
    FROM "<customer.customer v0: 1 file>"
  ) AS "__meshsim_raw"
) AS "customer"

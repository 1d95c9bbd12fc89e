-- SELECT p_partkey, p_name FROM supply.part
SELECT
  "part"."p_partkey" AS "p_partkey",
  "part"."p_name" AS "p_name"
FROM (
  SELECT
    "__meshsim_raw"."p_partkey" AS "p_partkey",
    "__meshsim_raw"."p_name" AS "p_name",
    "__meshsim_raw"."p_mfgr" AS "p_mfgr",
    "__meshsim_raw"."p_brand" AS "p_brand",
    "__meshsim_raw"."p_type" AS "p_type",
    "__meshsim_raw"."p_size" AS "p_size",
    "__meshsim_raw"."p_container" AS "p_container",
    "__meshsim_raw"."p_retailprice" AS "p_retailprice",
    "__meshsim_raw"."p_comment" AS "p_comment"
  FROM (
    SELECT
      *
    FROM "<supply.part v0: 1 file>"
  ) AS "__meshsim_raw"
) AS "part"

-- TPC-H Q15: top supplier (DATE = 1996-01-01); the view revenue0 is a common table expression
WITH revenue0 AS (
    SELECT
        l_suppkey AS supplier_no,
        sum(l_extendedprice * (1 - l_discount)) AS total_revenue
    FROM
        sales.lineitem
    WHERE
        l_shipdate >= CAST('1996-01-01' AS DATE)
        AND l_shipdate < CAST('1996-04-01' AS DATE)
    GROUP BY
        l_suppkey
)
SELECT
    s_suppkey,
    s_name,
    s_address,
    s_phone,
    total_revenue
FROM
    supply.supplier,
    revenue0
WHERE
    s_suppkey = supplier_no
    AND total_revenue = (
        SELECT
            max(total_revenue)
        FROM
            revenue0
    )
ORDER BY
    s_suppkey

-- TPC-H Q6: forecasting revenue change (DATE = 1994-01-01, DISCOUNT = 0.06, QUANTITY = 24)
SELECT
    sum(l_extendedprice * l_discount) AS revenue
FROM
    sales.lineitem
WHERE
    l_shipdate >= CAST('1994-01-01' AS DATE)
    AND l_shipdate < CAST('1995-01-01' AS DATE)
    AND l_discount BETWEEN 0.05 AND 0.07
    AND l_quantity < 24

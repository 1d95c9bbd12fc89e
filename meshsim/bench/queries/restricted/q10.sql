-- TPC-H Q10: returned item reporting (DATE = 1993-10-01), without c_acctbal (not granted to the restricted consumer)
SELECT
    c_custkey,
    c_name,
    sum(l_extendedprice * (1 - l_discount)) AS revenue,
    n_name,
    c_address,
    c_phone,
    c_comment
FROM
    customer.customer,
    sales.orders,
    sales.lineitem,
    customer.nation
WHERE
    c_custkey = o_custkey
    AND l_orderkey = o_orderkey
    AND o_orderdate >= CAST('1993-10-01' AS DATE)
    AND o_orderdate < CAST('1994-01-01' AS DATE)
    AND l_returnflag = 'R'
    AND c_nationkey = n_nationkey
GROUP BY
    c_custkey,
    c_name,
    c_phone,
    n_name,
    c_address,
    c_comment
ORDER BY
    revenue DESC,
    c_custkey
LIMIT 20

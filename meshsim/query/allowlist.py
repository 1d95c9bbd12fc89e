"""What a consumer's query (and a policy's mask or filter) may contain: capabilities as data.

Everything here is an ALLOWLIST. A syntax node, a function or a table function that is not
listed is refused, so a DuckDB release that adds a dangerous function changes nothing.

* :data:`NODES`: sqlglot expression classes that are plain relational syntax.
* :data:`FUNCTIONS`: sqlglot function classes analysts need (TPC-H and friends).
* :data:`ANONYMOUS`: function names sqlglot does not model (parsed as ``Anonymous``).
* :data:`DUCKDB_FUNCTIONS`: the function names DuckDB's own parser reports for the SQL we
  generate (``json_serialize_sql``), used by :mod:`meshsim.query.crosscheck`.
"""

from __future__ import annotations

#: Non-function syntax nodes. Anything else (Command, Into, Pivot, Placeholder, Struct,
#: Bracket, Dot, PositionalColumn, TableSample, Create, Insert, Pragma, Set...) is refused.
NODES = frozenset(
    {
        # query structure
        "Select", "Union", "Intersect", "Except", "Subquery", "From", "Join", "Where",
        "Group", "Having", "Order", "Ordered", "Limit", "Offset", "Qualify", "With", "CTE",
        "TableAlias", "Table", "Alias", "Column", "Identifier", "Star", "Distinct", "Lateral",
        "Values", "Tuple", "Paren", "HistoricalData", "Fetch",
        # literals and types
        "Literal", "Boolean", "Null", "DataType", "DataTypeParam", "Interval", "Var",
        "IntervalSpan",
        # operators
        "Neg", "Not", "And", "Or", "Add", "Sub", "Mul", "Div", "IntDiv", "Mod", "DPipe",
        "EQ", "NEQ", "GT", "GTE", "LT", "LTE", "NullSafeEQ", "NullSafeNEQ", "Is", "In",
        "Between", "Like", "ILike", "Exists", "Any", "All", "Case", "If", "Cast", "TryCast",
        "Window", "WindowSpec", "Filter", "Escape", "BitwiseAnd", "BitwiseOr",
    }
)

#: sqlglot function classes (``type(node).__name__``) that are allowed.
FUNCTIONS = frozenset(
    {
        # aggregates
        "Sum", "Avg", "Count", "Min", "Max", "CountIf", "ApproxDistinct", "Stddev",
        "StddevSamp", "StddevPop", "Variance", "VariancePop", "Median", "AnyValue",
        "ArgMax", "ArgMin", "Corr", "CovarSamp", "CovarPop", "BoolAnd", "BoolOr",
        "LogicalAnd", "LogicalOr", "GroupConcat", "StringAgg", "Quantile", "PercentileCont",
        "PercentileDisc", "ApproxQuantile",
        # window
        "RowNumber", "Rank", "DenseRank", "PercentRank", "CumeDist", "NthValue", "Ntile",
        "Lag", "Lead", "FirstValue", "LastValue",
        # conditionals and casts
        "Coalesce", "Nullif", "Greatest", "Least",
        # numbers
        "Round", "Abs", "Floor", "Ceil", "Sqrt", "Pow", "Ln", "Log", "Exp", "Sign",
        "Trunc",
        # strings
        "Upper", "Lower", "Length", "Trim", "Concat", "ConcatWs", "Substring", "Left",
        "Right", "Replace", "StrPosition", "StartsWith", "EndsWith", "Pad", "Repeat",
        "Reverse", "Initcap", "RegexpLike", "RegexpExtract", "RegexpReplace", "Contains",
        "MD5", "SHA2", "Split", "SplitPart",
        # dates and times
        "Extract", "CurrentDate", "CurrentTimestamp", "DateAdd", "DateSub", "DateDiff",
        "DateTrunc", "TimestampTrunc", "Year", "Month", "Day", "Quarter", "DayOfWeek",
        "DayOfYear", "WeekOfYear", "StrToDate", "StrToTime", "TimeToStr", "LastDay",
        "TsOrDsToDate", "DateStrToDate", "TimeStrToTime", "ToDays", "MakeDate",
        "DateFromParts", "Date", "UnixToTime", "TimeToUnix",
    }
)

#: Names of functions sqlglot parses as ``Anonymous`` that are allowed (lower case).
ANONYMOUS = frozenset(
    {
        "sha256", "hmac", "lpad", "rpad", "strftime", "strptime", "date_part", "datepart",
        "make_date", "yearweek", "isodow", "dayname", "monthname", "epoch", "bit_length",
        "string_agg", "list_aggregate", "mode", "product", "fsum", "favg", "bool_and",
        "bool_or", "entropy", "kurtosis", "skewness", "regr_slope", "regr_intercept",
        "geomean", "histogram", "approx_count_distinct", "ascii", "chr", "suffix", "prefix",
        "format", "printf", "nullif", "ifnull", "nvl", "even", "gamma", "ln", "log2",
        "log10", "pi", "radians", "degrees", "sin", "cos", "tan", "atan", "atan2",
        "date_diff", "datediff", "date_sub", "date_add", "age", "century", "decade",
        "millennium", "week", "weekday", "dayofmonth", "hour", "minute", "second",
        "to_days", "to_months", "to_years", "to_hours", "to_minutes", "to_seconds",
        "greatest", "least", "trim", "ltrim", "rtrim", "position", "instr", "strlen",
        "length_grapheme", "array_to_string", "concat", "coalesce", "round_even",
        "md5_number", "bitstring_agg", "count_star", "last_day",
    }
)

#: Table functions allowed in FROM (sqlglot class name), only with literal integer
#: arguments and at most :data:`MAX_SERIES_ROWS` rows.
TABLE_FUNCTIONS = frozenset({"GenerateSeries"})
MAX_SERIES_ROWS = 1_000_000

#: Function names as DuckDB's parser reports them for SQL generated from allowed nodes and
#: masks; the cross-check refuses any other FUNCTION node. Operators appear as functions.
DUCKDB_FUNCTIONS = frozenset(
    {
        "+", "-", "*", "/", "//", "%", "||", "~~", "!~~", "~~*", "!~~*", "&", "|",
        "sum", "avg", "count", "count_star", "min", "max", "count_if", "approx_count_distinct",
        "stddev", "stddev_samp", "stddev_pop", "variance", "var_samp", "var_pop", "median",
        "any_value", "arg_max", "arg_min", "argmax", "argmin", "corr", "covar_samp",
        "covar_pop", "bool_and", "bool_or", "listagg", "string_agg", "group_concat",
        "quantile", "quantile_cont", "quantile_disc", "approx_quantile", "mode", "product",
        "fsum", "favg", "entropy", "kurtosis", "skewness", "regr_slope", "regr_intercept",
        "geomean", "histogram", "bitstring_agg",
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "nth_value",
        "ntile", "lag", "lead", "first_value", "last_value",
        "coalesce", "nullif", "greatest", "least", "ifnull", "nvl",
        "round", "abs", "floor", "ceil", "ceiling", "sqrt", "pow", "power", "ln", "log",
        "log2", "log10", "exp", "sign", "trunc", "even", "gamma", "pi", "radians",
        "degrees", "sin", "cos", "tan", "atan", "atan2", "round_even",
        "upper", "lower", "length", "trim", "ltrim", "rtrim", "concat", "concat_ws",
        "substring", "substr", "left", "right", "replace", "strpos", "instr", "position",
        "starts_with", "ends_with", "suffix", "prefix", "lpad", "rpad", "repeat", "reverse",
        "initcap", "regexp_matches", "regexp_full_match", "regexp_extract", "regexp_replace",
        "contains", "md5", "sha256", "sha1", "hmac", "string_split", "str_split",
        "split_part", "ascii", "chr", "format", "printf", "bit_length", "strlen",
        "length_grapheme", "array_to_string", "md5_number",
        "date_part", "datepart", "current_date", "current_timestamp", "now", "today",
        "date_add", "date_sub", "date_diff", "datediff", "date_trunc", "datetrunc", "year",
        "month", "day", "quarter", "dayofweek", "dayofyear", "weekofyear", "week", "weekday",
        "dayofmonth", "hour", "minute", "second", "isodow", "yearweek", "dayname",
        "monthname", "epoch", "epoch_ms", "century", "decade", "millennium", "age",
        "strptime", "strftime", "try_strptime", "last_day", "make_date", "make_timestamp",
        "to_days", "to_months", "to_years", "to_hours", "to_minutes", "to_seconds",
        "to_timestamp", "list_value", "list_aggregate", "array_length", "len",
        "range", "generate_series",
    }
)

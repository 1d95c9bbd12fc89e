"""Where tables meshsim writes get their rows, besides TPC-H: files (:mod:`.files`), queries
over other products (:mod:`.derived`), and the columns of registered tables that declare none
(:mod:`.registered`). The checks of :mod:`meshsim.spec.sources` and the build use them."""

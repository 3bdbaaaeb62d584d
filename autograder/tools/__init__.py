"""Tools that build what grading compares with and is tested on: the reference solution executed
in-process (``solutions``), reference values (``build_references``), hidden tests run locally
(``local``) and the corpus of test submissions (``corpus``)."""

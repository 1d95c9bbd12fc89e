"""Explanations and product details show as HTML in any notebook and as text in a terminal,
with or without ``%load_ext meshsim`` (they had formatters only when the extension was
loaded)."""

from __future__ import annotations

from pathlib import Path

from meshsim.mesh import Mesh


def test_explanation_and_details_render_without_the_extension(built_workspace: Path):
    with Mesh.open(built_workspace) as mesh:
        explanation = mesh.session("eu_marketing_analyst").explain(
            "SELECT c_name FROM customer.customer"
        )
        html = explanation._repr_html_()
        assert "<table" in html and "customer.customer" in html
        assert "c_name" in str(explanation)
        details = mesh.show("customer.customer_profiles", as_consumer="eu_marketing_analyst")
        assert "<table" in details._repr_html_()
        assert "customer.customer_profiles" in str(details)
        assert "as seen by eu_marketing_analyst" in str(details)

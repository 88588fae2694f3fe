"""Post an admin change form the way a browser would: every field and inline as rendered."""

from __future__ import annotations

from typing import Any


def _values(form: Any, data: dict[str, Any]) -> None:
    for name in form.fields:
        bound = form[name]
        value = bound.value()
        key = bound.html_name
        if value is None:
            widget = getattr(bound.field.widget, "widget", bound.field.widget)  # admin wrapper
            if not getattr(widget, "allow_multiple_selected", False):
                data[key] = ""  # a multiple select with nothing chosen sends nothing
        elif isinstance(value, bool):
            if value:
                data[key] = "on"
        elif isinstance(value, list | tuple):
            data[key] = [str(v) for v in value]
        else:
            data[key] = str(value)


def change_form_data(response: Any) -> dict[str, Any]:
    """The POST data of a rendered admin add / change page, unchanged (management forms and
    the inlines' rows included)."""
    data: dict[str, Any] = {}
    _values(response.context["adminform"].form, data)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        _values(formset.management_form, data)
        for form in formset.forms:
            _values(form, data)
    return data

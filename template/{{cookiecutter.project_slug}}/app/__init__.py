"""The service's code: its settings, models and migrations{% if cookiecutter.http == "fastapi" %}, and its HTTP API{% endif %}.

``NAME`` is the service's human-readable name (the ``project_name`` it was made with).
"""
{#- The literal fits ruff's line length of 100 on one line, else in parentheses (as ruff format
    writes it), else nowhere: then ruff is told that this line is long on purpose. #}
{%- set name = cookiecutter.project_name | python_string %}
{%- if name | length <= 93 %}

NAME = {{ name }}
{%- elif name | length <= 96 %}

NAME = (
    {{ name }}
)
{%- else %}

NAME = {{ name }}  # noqa: E501
{%- endif %}

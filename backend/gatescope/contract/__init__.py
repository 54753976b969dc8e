"""The contract other tools rely on (docs/API.md), in code: the request models with every
limit (schemas.py, limits.py), a body parsed into them with no key given twice
(json_body.py), the response models (responses.py), what a run returns (results.py), how
it is encoded (encoding.py), and its errors (errors.py: field-named ValidationErrors, as
pydantic raises them, and ModelNotFoundError)."""

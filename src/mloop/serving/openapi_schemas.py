"""The OpenAPI document's component schemas: the served signature's request and response bodies, and the Open
Inference Protocol's tensors (as its published REST specification, ``open_inference_rest.yaml``, has them).

:func:`component_schemas` is used by :func:`mloop.serving.openapi.openapi_document`. A column's cell is its
JSON type (``null`` only where the training data had gaps), with the signature's categories or range as
examples; a prediction's type comes from the signature's output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mloop.serving.protocols.tensors import DATATYPES, datatype_of

if TYPE_CHECKING:
    from mloop.serving.app import ServerState
    from mloop.serving.protocols.v2 import V2Model
    from mloop.serving.schema import Column

__all__ = ["component_schemas", "ref"]

Json = dict[str, Any]
_REF = "#/components/schemas/"
_KIND = {"number": "number", "boolean": "boolean", "string": "string"}
_EXAMPLES = 8  # category examples per string column


def component_schemas(state: ServerState, v2: V2Model) -> Json:
    """``components.schemas`` for the app serving ``state`` (loaded); ``v2`` is the model as the V2 routes see it."""
    return {**_input_schemas(state), **_output_schemas(state), **_v2_schemas(state, v2)}


def ref(name: str) -> Json:
    return {"$ref": _REF + name}


def _nullable(kind: str, nullable: bool) -> Json:
    return {"type": [kind, "null"] if nullable else kind}


def _value(col: Column, sig: Mapping[str, Any]) -> Json:
    """One cell of a column: its JSON type, ``null`` where allowed, and examples from the signature."""
    schema = {**_nullable(_KIND[col.kind], col.nullable), "description": f"{col.dtype}; {col.expected()}"}
    if col.kind == "string" and sig.get("categories"):
        schema["examples"] = [str(c) for c in sig["categories"][:_EXAMPLES]]
    elif col.kind == "number" and "min" in sig and "max" in sig:
        schema["examples"] = [sig["min"], sig["max"]]
    return schema


def _example_value(col: Column, sig: Mapping[str, Any]) -> Any:
    if col.kind == "boolean":
        return True
    if col.kind == "string":
        cats = sig.get("categories") or ["text"]
        return str(cats[0])
    low = sig.get("min", 0.0)
    return int(low) if col.dtype.startswith(("int", "uint", "Int", "UInt")) else float(low)


def _output_item(output: Mapping[str, Any]) -> Json:
    """A prediction's schema from the signature's output (``{}`` when the signature has none)."""
    dtype = str(output.get("type", ""))
    if dtype.startswith(("int", "uint", "Int", "UInt")):
        item: Json = {"type": "integer"}
    elif dtype.startswith(("float", "Float")):
        item = {"type": ["number", "null"]}  # a non-finite float is written as null
    elif dtype in {"bool", "boolean"}:
        item = {"type": "boolean"}
    else:
        item = {}
    for _ in (output.get("shape") or [-1])[1:]:
        item = {"type": "array", "items": item}
    return item


def _input_schemas(state: ServerState) -> Json:
    """Row, RowArray, Columns, Rows, PredictInput and the MLflow shapes for the served signature."""
    assert state.schema is not None
    cols = state.schema.columns
    sigs = {
        str(c.get("name")): c
        for c in ((state.model.meta.get("signature") or {}) if state.model else {}).get("inputs") or ()
    }
    if cols is None:  # no signature: any columns of scalars
        scalar: Json = {"type": ["number", "string", "boolean", "null"]}
        row: Json = {"type": "object", "minProperties": 1, "additionalProperties": scalar}
        array_row: Json = {"type": "array", "minItems": 1, "items": scalar}
        columns: Json = {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {"type": "array", "minItems": 1, "items": scalar},
        }
        names: list[str] = []
    else:
        values = {c.name: _value(c, sigs.get(c.name, {})) for c in cols}
        names = [c.name for c in cols]
        example = {c.name: _example_value(c, sigs.get(c.name, {})) for c in cols}
        row = {
            "type": "object",
            "properties": values,
            "required": names,
            "additionalProperties": False,
            "description": "One row: a value for every signature column.",
            "examples": [example],
        }
        array_row = {
            "type": "array",
            "prefixItems": [values[n] for n in names],
            "items": False,
            "minItems": len(names),
            "description": f"One row in signature order: {', '.join(names)}.",
            "examples": [[example[n] for n in names]],
        }
        columns = {
            "type": "object",
            "required": names,
            "additionalProperties": False,
            "properties": {n: {"type": "array", "minItems": 1, "items": v} for n, v in values.items()},
            "description": "Columns: a list of values per signature column, all of the same length.",
        }
    rows = {"type": "array", "minItems": 1, "items": ref("Row"), "description": "Rows as objects."}
    array_rows = {"type": "array", "minItems": 1, "items": ref("RowArray"), "description": "Rows as arrays."}
    predict_input = {"anyOf": [ref("Rows"), ref("ArrayRows"), ref("Row"), ref("Columns")]}
    envelope = {
        "type": "object",
        "required": ["inputs"],
        "additionalProperties": False,
        "properties": {"inputs": ref("PredictInput"), "proba": {"type": "boolean", "default": False}},
        "description": "An envelope: proba=true answers predict_proba.",
    }
    split = {
        "type": "object",
        "required": ["data"],
        "additionalProperties": False,
        "properties": {
            "columns": {
                "type": "array",
                "items": {"type": "string", **({"enum": names} if names else {})},
                "uniqueItems": True,
                **({"minItems": len(names)} if names else {}),
                "description": "Column names for the data's positions (default: signature order).",
            },
            "index": {"type": "array", "description": "Row labels (pandas' split orient; ignored)."},
            "data": {
                "type": "array",
                "minItems": 1,
                "items": ref("RowArray"),
                "description": "Rows as arrays, in the order of columns.",
            },
        },
    }
    params = {"type": "object", "description": "Inference parameters (accepted, not used)."}
    shapes = {
        "dataframe_split": split,
        "dataframe_records": ref("Rows"),
        "instances": ref("PredictInput"),
        "inputs": ref("PredictInput"),
    }
    invocations = {
        "oneOf": [
            {
                "type": "object",
                "title": key,
                "required": [key],
                "additionalProperties": False,
                "properties": {key: schema, "params": params},
            }
            for key, schema in shapes.items()
        ]
    }
    return {
        "Row": row,
        "RowArray": array_row,
        "Rows": rows,
        "ArrayRows": array_rows,
        "Columns": columns,
        "PredictInput": predict_input,
        "PredictRequest": {"anyOf": [ref("PredictInput"), envelope]},
        "InvocationsRequest": invocations,
    }


def _output_schemas(state: ServerState) -> Json:
    output = ((state.model.meta.get("signature") or {}) if state.model else {}).get("output") or {}
    model = {"type": "string", "description": "The model version that answered, e.g. model:churn/3."}
    predictions = {
        "type": "object",
        "required": ["predictions", "model"],
        "additionalProperties": False,
        "properties": {"predictions": {"type": "array", "items": _output_item(output)}, "model": model},
    }
    probabilities = {
        "type": "object",
        "required": ["probabilities", "model"],
        "additionalProperties": False,
        "properties": {
            "probabilities": {"type": "array", "items": {"type": "array", "items": {"type": ["number", "null"]}}},
            "classes": {"type": "array"},
            "model": model,
        },
    }
    optional_text = {"type": ["string", "null"]}
    error = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message"],
                "properties": {
                    "message": {"type": "string", "description": "What was wrong and how to fix it."},
                    "field": {**optional_text, "description": "The field or column at fault."},
                    "expected": {**optional_text, "description": "What that field takes."},
                    "got": {**optional_text, "description": "What was sent."},
                },
            }
        },
    }
    return {
        "Predictions": predictions,
        "Probabilities": probabilities,
        "Error": error,
        "PredictResponse": {"anyOf": [ref("Predictions"), ref("Probabilities")]},
    }


def _v2_schemas(state: ServerState, v2: V2Model) -> Json:
    """The Open Inference Protocol's REST schemas (its published ``open_inference_rest.yaml``), with ``inputs``
    narrowed to this model's tensors where the signature names them (the generic form stays accepted)."""
    tensor_data = {
        "type": "array",
        "items": {"anyOf": [ref("V2TensorData"), {"type": ["number", "string", "boolean"]}]},
    }
    out_data = {
        "type": "array",
        "items": {"anyOf": [{"$ref": _REF + "V2OutputData"}, {"type": ["number", "string", "boolean", "null"]}]},
    }
    params = {"type": "object"}
    shape = {"type": "array", "items": {"type": "integer", "minimum": 0}}
    request_input = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": shape,
            "datatype": {"type": "string", "enum": list(DATATYPES)},
            "parameters": ref("V2Parameters"),
            "data": ref("V2TensorData"),
        },
    }
    generic = {"type": "array", "minItems": 1, "items": ref("V2RequestInput")}
    inputs: Json = generic
    sig = state.schema.columns if state.schema is not None else None
    if sig:
        one_row = []
        for col in sig:
            v2_type = datatype_of(col.dtype)  # what the V2 route takes for this column (as model_input checks)
            kinds = [v2_type] if v2_type in ("BOOL", "BYTES") else [k for k in DATATYPES if k not in ("BOOL", "BYTES")]
            cell = {"BOOL": {"type": "boolean"}, "BYTES": {"type": "string"}}.get(v2_type, {"type": "number"})
            one_row.append(
                {
                    "type": "object",
                    "required": ["name", "shape", "datatype", "data"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"const": col.name},
                        "shape": {"const": [1]},
                        "datatype": {"enum": kinds},
                        "data": {"type": "array", "items": cell, "minItems": 1, "maxItems": 1},
                    },
                }
            )
        per_column = {
            "type": "array",
            "prefixItems": one_row,
            "items": False,
            "minItems": len(one_row),
            "description": "One row: a [1] tensor per signature column.",
        }
        inputs = {"anyOf": [per_column, generic]}
    request_output = {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "enum": list(v2.outputs)}, "parameters": ref("V2Parameters")},
    }
    request = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": ref("V2Parameters"),
            "inputs": inputs,
            "outputs": {"type": "array", "minItems": 1, "items": ref("V2RequestOutput")},
        },
    }
    response_output = {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": shape,
            "datatype": {"type": "string", "enum": list(DATATYPES)},
            "parameters": ref("V2Parameters"),
            "data": ref("V2OutputData"),
        },
    }
    response = {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": ref("V2Parameters"),
            "outputs": {"type": "array", "items": ref("V2ResponseOutput")},
        },
    }
    tensor_meta = {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    }
    model_meta = {
        "type": "object",
        "required": ["name", "platform"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": ref("V2MetadataTensor")},
            "outputs": {"type": "array", "items": ref("V2MetadataTensor")},
        },
    }
    server_meta = {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    }
    return {
        "V2Parameters": params,
        "V2TensorData": tensor_data,
        "V2OutputData": out_data,
        "V2RequestInput": request_input,
        "V2RequestOutput": request_output,
        "V2InferRequest": request,
        "V2ResponseOutput": response_output,
        "V2InferResponse": response,
        "V2MetadataTensor": tensor_meta,
        "V2ModelMetadata": model_meta,
        "V2ServerMetadata": server_meta,
        "V2Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    }

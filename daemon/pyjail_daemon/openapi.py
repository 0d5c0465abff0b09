"""The OpenAPI 3 document of pyjail's own endpoints (served at /pyjail/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

_ERR = {"description": "error", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}
_STREAM = {"description": "JSON lines: {status, progressDetail:{current,total}} …, last {aux}",
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Progress"}}}}


def _q(name: str, typ: str = "string", desc: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": typ},
            "description": desc}


def _p(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_ARCHIVE_BODY = {"required": False, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}}}
_RESTORE_Q = [_q("path", desc="archive on the daemon host"), _q("name"),
              _q("force", "boolean"),
              _q("start", "boolean", "default: start it if it was running when backed up")]

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "pyjail endpoints", "version": "1"},
    "paths": {
        "/pyjail/v1/containers/{id}/backup": {"post": {
            "summary": "Back up a container into one checksummed archive",
            "parameters": [_p("id"), _q("mode", desc="live | pause | stop"),
                           _q("with_image", "boolean"), _q("include_binds", "boolean"),
                           _q("output", desc="file or directory on the daemon host"),
                           _q("pre_hook"), _q("post_hook"),
                           _q("name", desc="catalogue name of the backup")],
            "responses": {"200": _STREAM, "400": _ERR, "404": _ERR, "409": _ERR}}},
        "/pyjail/v1/volumes/{name}/backup": {"post": {
            "summary": "Back up a named volume", "parameters": [_p("name"), _q("output"), _q("name")],
            "responses": {"200": _STREAM, "404": _ERR}}},
        "/pyjail/v1/backups/restore": {"post": {
            "summary": "Restore a container or volume backup (checksums verified first)",
            "parameters": _RESTORE_Q, "requestBody": _ARCHIVE_BODY,
            "responses": {"200": _STREAM, "400": _ERR, "404": _ERR, "409": _ERR}}},
        "/pyjail/v1/volumes/restore": {"post": {
            "summary": "Restore a volume backup", "parameters": _RESTORE_Q,
            "requestBody": _ARCHIVE_BODY,
            "responses": {"200": _STREAM, "400": _ERR, "409": _ERR}}},
        "/pyjail/v1/backups/{id}/restore": {"post": {
            "summary": "Restore a catalogued backup", "parameters": [_p("id"), *_RESTORE_Q[1:]],
            "responses": {"200": _STREAM, "400": _ERR, "404": _ERR, "409": _ERR}}},
        "/pyjail/v1/backups": {"get": {
            "summary": "List the catalogue",
            "responses": {"200": {"description": "backups", "content": {"application/json": {
                "schema": {"type": "array",
                           "items": {"$ref": "#/components/schemas/Backup"}}}}}}}},
        "/pyjail/v1/backups/verify": {"post": {
            "summary": "Check every checksum of an archive",
            "parameters": [_q("path"), _q("name")], "requestBody": _ARCHIVE_BODY,
            "responses": {"200": {"description": "valid"}, "400": _ERR, "404": _ERR}}},
        "/pyjail/v1/backups/{id}/verify": {"post": {
            "summary": "Check every checksum of a catalogued backup", "parameters": [_p("id")],
            "responses": {"200": {"description": "valid"}, "400": _ERR, "404": _ERR}}},
        "/pyjail/v1/backups/{id}/archive": {"get": {
            "summary": "Download a catalogued archive (X-Pyjail-Sha256: its digest)",
            "parameters": [_p("id")],
            "responses": {"200": {"description": "the archive", "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}},
                          "404": _ERR}}},
        "/pyjail/v1/backups/prune": {"post": {
            "summary": "Delete old archives: per container keep the newest N and/or drop "
                       "those older than max_age seconds",
            "parameters": [_q("keep", "integer"), _q("max_age", "number"),
                           _q("container", desc="only this container's archives"),
                           _q("schedule", desc="only this schedule's archives")],
            "responses": {"200": {"description": "deleted", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/BackupPrune"}}}}, "400": _ERR}}},
        "/pyjail/v1/backups/{id}": {"delete": {
            "summary": "Delete a catalogued backup", "parameters": [_p("id")],
            "responses": {"204": {"description": "deleted"}, "404": _ERR}}},
        "/pyjail/v1/schedules": {
            "get": {"summary": "List backup schedules",
                    "responses": {"200": {"description": "schedules"}}},
            "post": {"summary": "Add a schedule", "requestBody": {"content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ScheduleIn"}}}},
                "responses": {"201": {"description": "created"}, "400": _ERR, "404": _ERR}}},
        "/pyjail/v1/schedules/{id}": {"delete": {
            "summary": "Remove a schedule", "parameters": [_p("id")],
            "responses": {"204": {"description": "removed"}, "404": _ERR}}},
        "/pyjail/v1/openapi.json": {"get": {"summary": "This document",
                                            "responses": {"200": {"description": "OpenAPI"}}}},
    },
    "components": {"schemas": {
        "Error": {"type": "object", "properties": {"message": {"type": "string"}}},
        "Progress": {"type": "object", "properties": {
            "status": {"type": "string"},
            "progressDetail": {"type": "object", "properties": {
                "current": {"type": "integer"}, "total": {"type": "integer"}}},
            "aux": {"type": "object"}, "error": {"type": "string"}}},
        "Backup": {"type": "object", "properties": {k: {"type": t} for k, t in [
            ("Id", "string"), ("Name", "string"), ("Path", "string"), ("Size", "integer"),
            ("Sha256", "string"), ("Created", "string"), ("Kind", "string"),
            ("Container", "string"), ("Image", "string"), ("Mode", "string"),
            ("Schedule", "string")]}},
        "BackupPrune": {"type": "object", "properties": {
            "BackupsDeleted": {"type": "array", "items": {"type": "string"}},
            "SpaceReclaimed": {"type": "integer", "description": "bytes freed on disk"}}},
        "ScheduleIn": {"type": "object", "properties": {
            "Container": {"type": "string"}, "Volume": {"type": "string"},
            "Interval": {"type": "number"}, "Cron": {"type": "string"},
            "Keep": {"type": "integer"}, "MaxAge": {"type": "number"},
            "Mode": {"type": "string"}, "WithImage": {"type": "boolean"},
            "Output": {"type": "string"}}},
    }},
}

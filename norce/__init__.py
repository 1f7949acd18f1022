"""Typed async clients for Norce Commerce (identity, Connect, Query) and its simulator.

The simulator lives in ``norce_simulator``; everything else here is client code.
"""

from __future__ import annotations

from norce.client import NorceClient
from norce.config import Environment, NorceCredentials, NorceEndpoints
from norce.connect import ConnectClient, ImportKind, JobTimeout
from norce.connect_header import ConnectHeader
from norce.errors import (
    NorceAuthError,
    NorceBadRequest,
    NorceError,
    NorceNotFound,
    NorceRateLimited,
    NorceRetriesExhausted,
    NorceServerError,
    NorceTimeout,
    NorceTransportError,
)
from norce.fields import CustomerField, ProductField, SkuField, SkuOnhandField, SkuPriceListField
from norce.identity import TokenProvider
from norce.jobs import Job, JobLogEntry, JobResponse, JobStatus, LogSeverity, ValidationSummary
from norce.odata import ODataQuery
from norce.query import ODataPage, QueryClient
from norce.retry import RetryPolicy

__all__ = [
    "ConnectClient",
    "ConnectHeader",
    "CustomerField",
    "Environment",
    "ImportKind",
    "Job",
    "JobLogEntry",
    "JobResponse",
    "JobStatus",
    "JobTimeout",
    "LogSeverity",
    "NorceAuthError",
    "NorceBadRequest",
    "NorceClient",
    "NorceCredentials",
    "NorceEndpoints",
    "NorceError",
    "NorceNotFound",
    "NorceRateLimited",
    "NorceRetriesExhausted",
    "NorceServerError",
    "NorceTimeout",
    "NorceTransportError",
    "ODataPage",
    "ODataQuery",
    "ProductField",
    "QueryClient",
    "RetryPolicy",
    "SkuField",
    "SkuOnhandField",
    "SkuPriceListField",
    "TokenProvider",
    "ValidationSummary",
]

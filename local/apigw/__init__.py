"""A local API Gateway for the REST APIs of ``template.yaml`` (see ``app.GatewayApp``)."""

from local.apigw.app import GatewayApp, api_id
from local.apigw.server import GatewayServer, InProcessFunctions, build_gateway
from local.apigw.sigv4 import IamUser, ReceivedRequest, SignatureRejected, SigV4Verifier

__all__ = [
    "GatewayApp",
    "GatewayServer",
    "IamUser",
    "InProcessFunctions",
    "ReceivedRequest",
    "SigV4Verifier",
    "SignatureRejected",
    "api_id",
    "build_gateway",
]

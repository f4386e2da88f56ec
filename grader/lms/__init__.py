"""LMS integration: signed webhooks in, signed callbacks out, LTI 1.3 score passback.

No persistence here: the service's store keeps integrations (secrets encrypted with `SecretBox`),
the outbox rows and their attempts; this package signs, validates, sends and decides.
"""

from grader.lms.lti import (
    AccessToken, LtiPlatform, TokenCache, TokenError, ToolKeys, client_assertion, fetch_token, post_score,
    score_document, scores_url,
)
from grader.lms.outbox import (
    DELIVERY_HEADER, AttemptResult, Decision, RetryPolicy, callback_payload, decide, deliver_callback,
    next_attempt_delay,
)
from grader.lms.signing import (
    INTEGRATION_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, SecretBox, SecretBoxError, SignatureError, new_secret,
    sign, signed_headers, verify,
)
from grader.lms.webhook import Webhook, WebhookError, WebhookFields, WebhookJson, max_body_bytes, parse_form, parse_json

__all__ = [
    "AccessToken", "AttemptResult", "DELIVERY_HEADER", "Decision", "INTEGRATION_HEADER", "LtiPlatform",
    "RetryPolicy", "SIGNATURE_HEADER", "SecretBox", "SecretBoxError", "SignatureError", "TIMESTAMP_HEADER",
    "TokenCache", "TokenError", "ToolKeys", "Webhook", "WebhookError", "WebhookFields", "WebhookJson",
    "callback_payload", "client_assertion", "decide", "deliver_callback", "fetch_token", "max_body_bytes",
    "new_secret", "next_attempt_delay", "parse_form", "parse_json", "post_score", "score_document", "scores_url",
    "sign", "signed_headers", "verify",
]

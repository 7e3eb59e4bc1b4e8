"""Descriptions for the schema elements that do not carry one where they are defined.

Most descriptions sit beside their field (``strawberry.field(description=...)``). The
ones here are of two kinds: conventions that read the same on every type (Relay's
``edges``/``pageInfo``/``cursor``, a mutation's ``clientMutationId``/``userErrors``/
``input``), and a table for the rest, applied to the built schema by
:func:`describe` so that GraphiQL, introspection and ``schema.graphql`` show them.
tests/api/test_schema_descriptions.py fails on any element left without one.
"""

from __future__ import annotations

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
)

from app.criteria import CRITERIA, LANGUAGES

FIELDS = {
    "clientMutationId": "Echoed from the input, to match an answer to its request (Relay).",
    "userErrors": "Why the mutation did nothing (or not all of it); empty on success.",
    "edges": "This page's items, each with its cursor.",
    "pageInfo": "Where this page stands in the whole list.",
    "cursor": "Opaque: pass it to `after` or `before` to page from this item.",
    "node": "The item.",
    "totalCount": "Items in the whole list, all pages.",
    "id": "The global id (Relay): `node(id:)` finds the object again.",
}
ARGUMENTS = {
    "input": "The mutation's input.",
    "first": "Page size, from the start (1..100; 20 when neither first nor last).",
    "after": "Only items after this cursor (`endCursor`).",
    "last": "Page size, from the end (1..100).",
    "before": "Only items before this cursor (`startCursor`).",
    "youtubeId": "A YouTube video id (11 characters).",
    "username": "A contributor's username.",
    "lang": "The language to write labels in (else Accept-Language, else English).",
    "criteria": "Only these criteria, in this order (all when omitted).",
    "filter": "Only videos matching this.",
    "excludeCompared": "Leave out the videos I compared (signed in).",
    "includeUnsafe": "Include videos that are not safe to recommend (see `unsafeReasons`).",
    "weights": "Criterion weights (default: the main criterion only, weight 1).",
}
# ErrorCode (app/errors.py) values; a code added there needs a line here
ERROR_CODES = {
    "BAD_REQUEST": "The HTTP request is not a GraphQL request Sunrank can read.",
    "METHOD_NOT_ALLOWED": "That HTTP method cannot run this operation (mutations need POST).",
    "NOT_ACCEPTABLE": "None of the media types in Accept can be answered.",
    "PAYLOAD_TOO_LARGE": "The request body is too large.",
    "RATE_LIMITED": "Too many requests from this client: wait and retry.",
    "FORBIDDEN_ORIGIN": "The request's Origin is not allowed (CORS).",
    "TOO_MANY_CONNECTIONS": "Too many WebSocket connections from this client.",
    "TOO_MANY_OPERATIONS": "Too many subscriptions on this connection.",
    "GRAPHQL_PARSE_FAILED": "The document is not valid GraphQL syntax.",
    "GRAPHQL_VALIDATION_FAILED": "The document does not match the schema.",
    "QUERY_TOO_LARGE": "The document is too long.",
    "TOO_MANY_TOKENS": "The document has too many tokens.",
    "QUERY_TOO_DEEP": "The document nests too deep.",
    "QUERY_TOO_COSTLY": "The document would cost too much to answer.",
    "TOO_MANY_ALIASES": "The document has too many aliases.",
    "TOO_MANY_DIRECTIVES": "The document has too many directives.",
    "BAD_NUMBER": "A number is out of what Sunrank can store.",
    "BAD_STRING": "A string holds characters Sunrank cannot store (NUL, lone surrogates).",
    "PERSISTED_QUERY_NOT_FOUND": "Unknown persisted-query hash: send the document with it.",
    "PERSISTED_QUERY_NOT_SUPPORTED": "Persisted queries are turned off on this server.",
    "PERSISTED_QUERY_NOT_ALLOWED": "Only registered operations are accepted (allow-list mode).",
    "PERSISTED_QUERY_HASH_MISMATCH": "The hash is not the SHA-256 of the document sent.",
    "INTERNAL_SERVER_ERROR": "A bug: quote the request id when reporting it.",
    "UNAUTHENTICATED": "Sign in first (Authorization: Bearer <token>).",
    "FORBIDDEN": "Signed in, but not allowed to do this.",
    "BAD_CREDENTIALS": "Wrong username or password.",
    "DEACTIVATED": "The account is deactivated.",
    "BAD_TOKEN": "The token is not one Sunrank issued.",
    "EXPIRED_TOKEN": "The token has expired.",
    "USED_TOKEN": "The token was already used.",
    "UNKNOWN_SESSION": "No such session of yours.",
    "TOO_MANY_ATTEMPTS": "Too many failed attempts: wait and retry.",
    "TOO_MANY_REGISTRATIONS": "Too many accounts created from this address recently.",
    "TOO_MANY_MAILS": "Too many emails sent recently: wait and retry.",
    "INVALID": "The value is not valid.",
    "MISSING": "A required value is missing.",
    "TOO_LONG": "The value is too long.",
    "OUT_OF_RANGE": "The number is outside its allowed range.",
    "EMPTY_RANGE": "The range is empty (its start is after its end).",
    "BAD_ID": "Not a global id this API issued.",
    "TOO_MANY_IDS": "Too many ids in one request.",
    "BAD_FIRST": "`first` is outside its allowed range.",
    "BAD_COUNT": "The count is outside its allowed range.",
    "BAD_PAGINATION": "Paging arguments this API cannot honour (a foreign cursor...).",
    "STALE_CURSOR": "The cursor's ranking is no longer kept: start again from the first page.",
    "BAD_VIDEO_ID": "Not a YouTube video id (11 characters).",
    "BAD_USERNAME": "Not a valid username.",
    "BAD_LANGUAGE": "Not a supported language.",
    "BAD_SCORE": "Not a valid score.",
    "BAD_SCORE_MAX": "Not a valid score scale.",
    "SCORE_OUT_OF_RANGE": "The score is outside -scoreMax..scoreMax.",
    "UNKNOWN_CRITERION": "No such criterion.",
    "DUPLICATE_CRITERION": "A criterion is given twice.",
    "MAIN_CRITERION_REQUIRED": "A new comparison must score the main criterion.",
    "NO_SCORES": "At least one score is needed.",
    "ALL_ZERO": "At least one weight must be positive.",
    "SAME_VIDEO": "A video cannot be compared with itself.",
    "UNKNOWN_FIELD": "No such field.",
    "BAD_EMAIL": "Not a valid email address.",
    "DISPOSABLE_EMAIL": "Disposable email addresses are refused.",
    "BAD_DOMAIN": "Not a valid domain name.",
    "BAD_STATUS": "Not a valid status.",
    "WEAK_PASSWORD": "The password is too weak.",
    "PASSWORD_TOO_LONG": "The password is too long.",
    "INVALID_SETTINGS": "The settings are not valid.",
    "UNKNOWN_VIDEO": "Sunrank does not know this video.",
    "UNKNOWN_USER": "No such user.",
    "UNKNOWN_COMPARISON": "No such comparison of yours.",
    "NOT_RATED": "You have not rated this video: compare it first.",
    "NOT_MODERATED": "The video is not moderated.",
    "READ_ONLY": "This value cannot be changed this way.",
    "CONFLICT": "A concurrent change got there first: retry.",
    "NOTHING_TO_DO": "The request would change nothing.",
    "USERNAME_TAKEN": "The username is taken.",
    "EMAIL_TAKEN": "The address belongs to another account.",
    "SAME_EMAIL": "That is already your address.",
    "NO_EMAIL": "The account has no email address.",
    "ALREADY_VERIFIED": "The address is already verified.",
    "SELF_VOUCH": "You cannot vouch for yourself.",
    "SELF_DEACTIVATION": "An administrator cannot deactivate their own account.",
}
LANGUAGE_NAMES = {"en": "English.", "fr": "French."}

TABLE = {
    # -- root types --
    "Query": "Reads: videos, rankings, contributors, the signed-in user.",
    "Mutation": "Writes; each answers a payload with `userErrors` instead of failing.",
    "Subscription": "Live updates over WebSocket (graphql-transport-ws).",
    "Query.stats": "Counts of users, comparisons and videos, and the score version.",
    "Query.comparison(videoA)": "The first video of the pair (YouTube id).",
    "Query.comparison(videoB)": "The second video of the pair (YouTube id).",
    "Query.emailDomains(status)": "Only the domains with this status (all when omitted).",
    "Subscription.scoresUpdated(youtubeIds)": "The videos to follow (YouTube ids, 1..100).",
    "Mutation.addToRateLater": "Put a video in my rate-later list (signed in).",
    "Mutation.removeFromRateLater": "Take a video out of my rate-later list (signed in).",
    # -- videos and scores --
    "Video.youtubeId": "The video's id on YouTube (11 characters).",
    "Video.title": "The title; null when unknown (not fetched yet, or YouTube does not say).",
    "Video.description": "YouTube's description; null when unknown.",
    "Video.tags": "YouTube's tags; null when unknown.",
    "Video.durationSeconds": "Length in seconds; null when unknown.",
    "Video.publishedAt": "When it was published on YouTube; null when unknown.",
    "Video.metadataFetchedAt": "When metadata was last fetched from YouTube; null: never.",
    "Video.thumbnailUrl": "YouTube's medium-size thumbnail.",
    "VideoAvailability.OK": "Watchable and embeddable.",
    "VideoAvailability.DELETED": "Unknown to YouTube: removed, or never existed.",
    "VideoAvailability.PRIVATE": "Made private by its uploader.",
    "VideoAvailability.NOT_EMBEDDABLE": "Watchable on YouTube only.",
    "UnsafeReason.INSUFFICIENT_SCORE": "The main score is 20 or less.",
    "UnsafeReason.INSUFFICIENT_TRUST": "Its raters' trust sums to less than 1.5.",
    "UnsafeReason.UNAVAILABLE": "Deleted or private at YouTube.",
    "UnsafeReason.MODERATED": "Hidden by an administrator.",
    "VideoScore.criterion": "The criterion this score is on.",
    "PersonalScore.criterion": "The criterion this score is on.",
    "PersonalScore.uncertainty": "Half-width on the display scale.",
    "VideoFilter.publishedAfter": "Published at or after this time.",
    "VideoFilter.publishedBefore": "Published before this time.",
    "VideoFilter.minDurationSeconds": "At least this long (seconds).",
    "VideoFilter.maxDurationSeconds": "At most this long (seconds).",
    "ScoresUpdate.youtubeId": "The video whose scores moved.",
    "ScoresUpdate.scoreVersion": "The learner's score version these scores come from.",
    "ScoresUpdate.scores": "Its new scores (the criteria subscribed to).",
    "Stats": "Counts over the whole poll.",
    "Stats.users": "Accounts.",
    "Stats.comparisons": "Comparisons, by everyone.",
    "Stats.videos": "Videos Sunrank knows.",
    "Stats.scoredVideos": "Videos with at least one score.",
    "Stats.scoreVersion": "The learner's score version (moves with every applied change).",
    # -- criteria and rankings --
    "Criterion.name": "The criterion's name.",
    "LocalizedLabel": "A label in one language.",
    "LocalizedLabel.language": "The label's language.",
    "LocalizedLabel.label": "The label.",
    "CriterionWeight": "A criterion's weight in a ranking.",
    "CriterionWeight.criterion": "The criterion.",
    "CriterionWeight.weight": "Its weight (0..100).",
    "CriterionWeightInput": "A criterion's weight in a ranking.",
    "CriterionWeightInput.criterion": "The criterion.",
    "RankingConnection": "A page of a ranking (videos by weighted score, best first).",
    "RatingEdge": "A rating in a list.",
    "ComparisonEdge": "A comparison in a list.",
    # -- comparisons --
    "Comparison.videoA": "The first video (negative scores prefer it).",
    "Comparison.videoB": "The second video (positive scores prefer it).",
    "Comparison.scores": "One score per criterion compared.",
    "Comparison.createdAt": "When it was first submitted.",
    "Comparison.updatedAt": "When it last changed.",
    "ComparisonScore": "A comparison's score on one criterion.",
    "ComparisonScore.criterion": "The criterion.",
    "ScoreInput": "A score on one criterion.",
    "ScoreInput.criterion": "The criterion.",
    "SubmitComparisonInput": "A comparison to create, or to merge into an existing one.",
    "SubmitComparisonPayload": "The comparison as stored.",
    "SubmitComparisonPayload.comparison": "The comparison as stored; null when refused.",
    "DeleteComparisonInput.videoA": "The first video of the pair (instead of `id`).",
    "DeleteComparisonInput.videoB": "The second video of the pair (instead of `id`).",
    "DeleteComparisonPayload": "What deleting a comparison did.",
    "DeleteComparisonPayload.deleted": "Whether a comparison was deleted.",
    "DeleteComparisonPayload.videoA": "The first video, its scores updated.",
    "DeleteComparisonPayload.videoB": "The second video, its scores updated.",
    "RatingVisibilityInput": "Which rating to make public or private.",
    "RatingVisibilityInput.youtubeId": "The rated video.",
    "RatingVisibilityInput.isPublic": "True: shown on my public profile.",
    "VideoInput": "A video, by YouTube id.",
    "VideoInput.youtubeId": "The video's YouTube id.",
    # -- videos, admin --
    "AddVideoInput": "A video to add; its metadata comes from YouTube.",
    "AddVideoInput.youtubeId": "The video's YouTube id.",
    "AddVideoInput.title": "Ignored: metadata comes from YouTube.",
    "AddVideoInput.uploader": "Ignored: metadata comes from YouTube.",
    "AddVideoInput.language": "Ignored: metadata comes from YouTube.",
    "AddVideoInput.durationSeconds": "Ignored: metadata comes from YouTube.",
    "AddVideoInput.publishedAt": "Ignored: metadata comes from YouTube.",
    "AddVideoPayload": "The video added (or already known).",
    "AddVideoPayload.video": "The video.",
    "AddVideoPayload.created": "True when it was new.",
    "SetVideoMetadataInput.youtubeId": "The video to correct.",
    "SetVideoMetadataInput.title": "New title (unchanged when omitted).",
    "SetVideoMetadataInput.uploader": "New channel name (unchanged when omitted).",
    "SetVideoMetadataInput.description": "New description (unchanged when omitted).",
    "SetVideoMetadataInput.tags": "New tags (unchanged when omitted).",
    "SetVideoMetadataInput.durationSeconds": "New length in seconds (unchanged when omitted).",
    "SetVideoMetadataInput.publishedAt": "New publication time (unchanged when omitted).",
    "SetVideoMetadataInput.lock": "Keep these values when YouTube is fetched again.",
    "SetVideoMetadataPayload": "The corrected video.",
    "SetVideoMetadataPayload.video": "The video.",
    "ModerateVideoInput.youtubeId": "The video to hide or show again.",
    "ModerateVideoPayload": "The moderated video.",
    "ModerateVideoPayload.video": "The video.",
    "RefitInput": "Options of a full refit.",
    "RefitPayload": "The outcome of a full refit.",
    "RefitPayload.fit": "The fit's report; null when refused.",
    "FitReport": "How a full fit went.",
    "FitReport.iterations": "Newton iterations run.",
    "FitReport.seconds": "Wall time of the fit.",
    "FitReport.gradNorm": "The gradient's norm at the end (small: converged).",
    "FitReport.converged": "Whether the fit met its tolerance.",
    # -- accounts --
    "User.username": "The contributor's username.",
    "CredentialsInput": "A username and password.",
    "CredentialsInput.username": "The username.",
    "CredentialsInput.password": "The password.",
    "RegisterInput": "A new account.",
    "RegisterInput.username": "The username wanted.",
    "RegisterInput.password": "The password (see the password rules).",
    "RegisterPayload": "The new account.",
    "RegisterPayload.user": "The new account; null when refused.",
    "LoginPayload": "A bearer token for the account.",
    "LoginPayload.user": "The signed-in account; null when refused.",
    "LogoutInput": "Which sessions to end.",
    "LogoutPayload": "What signing out did.",
    "LogoutPayload.revokedTokens": "How many tokens were revoked.",
    "ChangePasswordInput": "The old and the new password.",
    "ChangePasswordInput.oldPassword": "The current password.",
    "ChangePasswordInput.newPassword": "The new password.",
    "ChangePasswordPayload": "Whether the password changed.",
    "ChangeEmailInput": "A new email address (verified by a link).",
    "ChangeEmailInput.email": "The new address.",
    "RequestPasswordResetInput": "Where to send a reset link.",
    "RequestPasswordResetInput.email": "The account's address.",
    "ResetPasswordInput": "A reset token and the new password.",
    "ResetPasswordInput.newPassword": "The new password.",
    "TokenInput": "A token from an emailed link.",
    "VerifyEmailPayload": "The verified account.",
    "VerifyEmailPayload.username": "Whose address was verified; null when refused.",
    "RevokeSessionInput": "The session to end.",
    "RevokeSessionPayload": "Whether the session was ended.",
    "RevokeSessionPayload.revoked": "True when a session was revoked.",
    "Session.createdAt": "When the session signed in.",
    "Session.expiresAt": "When its token expires.",
    "DeleteAccountInput": "Confirmation of the account's deletion.",
    "DeleteAccountPayload": "Whether the account was deleted.",
    "DeleteAccountPayload.deleted": "True when the account was deleted.",
    "UsernameInput": "A contributor, by username.",
    "UsernameInput.username": "The username.",
    "SetPretrustInput": "A contributor's pretrust to set (administrators).",
    "SetPretrustInput.username": "The contributor.",
    "SetAccountActiveInput": "An account to deactivate or reactivate (administrators).",
    "SetAccountActiveInput.username": "The account.",
    "SetAccountActiveInput.active": "False: deactivate; true: reactivate.",
    "SetAccountActivePayload": "The account's new state.",
    "SetAccountActivePayload.active": "Whether the account is now active.",
    "EmailDomain.domain": "The domain name.",
    "EmailDomain.status": "Its status.",
    "EmailDomainInput": "A domain and its new status (administrators).",
    "DomainStatus.ACCEPTED": "Trusted: a verified address on it earns pretrust.",
    "DomainStatus.REJECTED": "Refused for new accounts.",
    "DomainStatus.PENDING": "Not reviewed yet.",
    # -- settings --
    "Settings.extension": "Settings of the browser extension.",
    "ExtensionSettings": "Settings of the browser extension.",
    "ExtensionSettingsInput": "New settings of the browser extension.",
    "ExtensionSettingsInput.searchRecommendations": "Show recommendations on search pages.",
    "ExtensionSettingsInput.showScores": "Show scores on YouTube's pages.",
    "SettingsWeight": "A criterion's weight in my default ranking.",
    "SettingsWeight.criterion": "The criterion.",
    "SettingsWeight.weight": "Its weight.",
    "SettingsWeightInput": "A criterion's weight in my default ranking.",
    "SettingsWeightInput.criterion": "The criterion.",
    "SettingsWeightInput.weight": "Its weight.",
    "UpdateSettingsInput.defaultWeights": "My default ranking weights (unchanged if omitted).",
    "UpdateSettingsInput.language": "My language (unchanged if omitted).",
    "UpdateSettingsInput.extension": "Extension settings (unchanged if omitted).",
    "UpdateSettingsPayload": "My settings as stored.",
    "UpdateSettingsPayload.settings": "My settings; null when refused.",
}


def _fallback(coordinate: str, name: str) -> str | None:
    """Descriptions by convention, for an element the table does not name."""
    type_name, _, rest = coordinate.partition(".")
    if not rest:  # a type
        if name.endswith("Payload"):
            return f"What `{name[0].lower()}{name[1:-7]}` answers."
        if name.endswith("Input"):
            return "The input of a mutation or query."
        return None
    if "(" in rest:
        return ARGUMENTS.get(name)
    if type_name == "CriterionName":
        criterion = next((c for c in CRITERIA if c.name == name), None)
        return f"{criterion.label_in('en')}." if criterion else None
    if type_name == "ErrorCode":
        return ERROR_CODES.get(name)
    if type_name == "LabelLanguage":
        return LANGUAGE_NAMES.get(name, f"ISO 639-1 `{name}`." if name in LANGUAGES else None)
    return FIELDS.get(name)


def _text(coordinate: str, name: str) -> str | None:
    return TABLE.get(coordinate) or _fallback(coordinate, name)


def describe(schema: GraphQLSchema) -> None:
    """Fill in every missing description of ``schema`` from the table and conventions."""
    for type_name, gql_type in schema.type_map.items():
        if type_name.startswith("__"):
            continue
        if gql_type.description is None:
            gql_type.description = _text(type_name, type_name)
        if isinstance(gql_type, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, field in gql_type.fields.items():
                coordinate = f"{type_name}.{field_name}"
                if field.description is None:
                    field.description = _text(coordinate, field_name)
                for arg_name, arg in getattr(field, "args", {}).items():
                    if arg.description is None:
                        arg.description = _text(f"{coordinate}({arg_name})", arg_name)
        if isinstance(gql_type, GraphQLEnumType):
            for value_name, value in gql_type.values.items():
                if value.description is None:
                    value.description = _text(f"{type_name}.{value_name}", value_name)

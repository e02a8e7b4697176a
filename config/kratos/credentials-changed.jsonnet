// Body of the Kratos `web_hook` that tells logout-relay that an identity's credentials changed, so that
// every OAuth2 login session of the identity ends at Hydra (and every app through back-channel logout).
// Wire it into selfservice.flows.settings.after.<method>.hooks for each credential method (password,
// totp, webauthn, passkey, lookup_secret, oidc) and into selfservice.flows.recovery.after.hooks, each
// time BEFORE Kratos' `revoke_active_sessions`. Kratos calls this function with the hook context as `ctx`.
//
// Only ctx.identity and ctx.flow are relied on: Kratos v1.3.1 passes no ctx.session to these hooks
// (later versions pass one to settings hooks, never to recovery hooks).
// - The flow: Kratos sets a recovery flow's state to passed_challenge before its after hooks, and a
//   settings flow's to success; a settings flow also carries its identity.
// - The method: ctx.flow.active where Kratos sets it (a recovery flow: code or link; a settings flow
//   only after an oidc link), else an oidc callback in ctx.request_url. Kratos v1.3.1 does not tell the
//   other settings methods (the method is in the form body, not in ctx): then none is sent.
function(ctx)
  local text(object, name) =
    if std.isObject(object) && std.objectHas(object, name) && std.isString(object[name]) then object[name] else '';
  local flow = if std.objectHas(ctx, 'flow') && std.isObject(ctx.flow) then ctx.flow else {};
  local identity = if std.objectHas(ctx, 'identity') && std.isObject(ctx.identity) then ctx.identity else {};
  local state = text(flow, 'state');
  local kind =
    if state == 'passed_challenge' then 'recovery'
    else if state == 'success' || std.objectHas(flow, 'identity') then 'settings'
    else 'recovery';
  local active = text(flow, 'active');
  local method =
    if active != '' then active
    else if std.length(std.findSubstr('/self-service/methods/oidc/', text(ctx, 'request_url'))) > 0 then 'oidc'
    else '';
  if text(identity, 'id') == '' then
    error 'logout-relay: the hook context has no identity; wire credentials-changed.jsonnet into settings.after and recovery.after only'
  else {
    identity_id: identity.id,
    flow: kind,
  } + (if method != '' then { method: std.substr(method, 0, 64) } else {})

// Body of the Kratos `web_hook` that tells logout-relay which identity logged in to which Hydra login
// session. Wire it into selfservice.flows.login.after (for each method) and registration.after (before
// the `session` hook). Kratos calls this function with the hook context as `ctx`.
//
// Logins that did not come from Hydra (no OAuth2 login challenge) have no Hydra session to index: the
// call is cancelled, and Kratos sends nothing.
function(ctx)
  local flow = if std.objectHas(ctx, 'flow') && ctx.flow != null then ctx.flow else {};
  local challenge = if std.objectHas(flow, 'oauth2_login_challenge') then flow.oauth2_login_challenge else null;
  local identity = if std.objectHas(ctx, 'identity') && ctx.identity != null then ctx.identity else {};
  if challenge == null || challenge == '' || !std.objectHas(identity, 'id') then
    error 'cancel'
  else {
    identity_id: identity.id,
    login_challenge: challenge,
  }

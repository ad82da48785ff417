// The tables of migrations/{sqlite,postgres}. Only the SQL types both backends
// share: ids as Text, times as BigInt unix seconds.

diesel::table! {
    workspaces (id) {
        id -> Text,
        name -> Text,
        plan -> Text,
        created_at -> BigInt,
        external_id -> Nullable<Text>,
        deleted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        password_hash -> Text,
        created_at -> BigInt,
        external_id -> Nullable<Text>,
        disabled_at -> Nullable<BigInt>,
        deleted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    identities (issuer, subject) {
        issuer -> Text,
        subject -> Text,
        user_id -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(identities -> users (user_id));

diesel::table! {
    pending_sign_ins (state_hash) {
        state_hash -> Text,
        browser_hash -> Text,
        nonce -> Text,
        pkce_verifier -> Text,
        next -> Text,
        client_address -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    memberships (workspace_id, user_id) {
        workspace_id -> Text,
        user_id -> Text,
        role -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        is_public -> Bool,
        redirect_uris -> Text,
        created_at -> BigInt,
        kind -> Text,
        owner_user_id -> Nullable<Text>,
        metadata -> Nullable<Text>,
        registration_token_hash -> Nullable<Text>,
        token_endpoint_auth_method -> Text,
        grant_types -> Text,
        updated_at -> BigInt,
        deleted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        csrf_token -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    consent_requests (id_hash) {
        id_hash -> Text,
        session_hash -> Text,
        client_id -> Text,
        redirect_uri -> Text,
        scopes -> Text,
        state -> Nullable<Text>,
        code_challenge -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        client_document -> Nullable<Text>,
        resource -> Nullable<Text>,
    }
}

diesel::table! {
    authorizations (id) {
        id -> Text,
        client_id -> Text,
        workspace_id -> Text,
        user_id -> Text,
        scopes -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
        resource -> Nullable<Text>,
    }
}

diesel::table! {
    auth_codes (code_hash) {
        code_hash -> Text,
        authorization_id -> Text,
        client_id -> Text,
        redirect_uri -> Text,
        code_challenge -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        authorization_id -> Text,
        client_id -> Text,
        scopes -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        jkt -> Nullable<Text>,
    }
}

diesel::table! {
    access_tokens (jti) {
        jti -> Text,
        authorization_id -> Text,
        client_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    revocation_events (seq) {
        seq -> BigInt,
        kind -> Text,
        subject -> Text,
        expires_at -> BigInt,
        created_at_ms -> BigInt,
        txid -> Nullable<BigInt>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        private_key -> Text,
        public_key -> Text,
        created_at -> BigInt,
        retired_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        workspace_id -> Text,
        name -> Text,
        public_id -> Text,
        secret_hash -> Text,
        access -> Text,
        created_by -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        rotated_at -> Nullable<BigInt>,
        usage_count -> BigInt,
        last_used_at -> Nullable<BigInt>,
        allowed_ips -> Nullable<Text>,
        scopes -> Nullable<Text>,
        last_used_ip -> Nullable<Text>,
        previous_secret_hash -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<BigInt>,
        mailbox_id -> Nullable<Text>,
        expiring_sent_at -> Nullable<BigInt>,
        description -> Text,
    }
}

diesel::table! {
    tags (id) {
        id -> Text,
        workspace_id -> Text,
        name -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    forms (id) {
        id -> Text,
        workspace_id -> Text,
        name -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        workspace_id -> Text,
        actor -> Text,
        action -> Text,
        subject -> Text,
        client_address -> Nullable<Text>,
        created_at -> BigInt,
        detail -> Nullable<Text>,
    }
}

diesel::joinable!(memberships -> workspaces (workspace_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(authorizations -> clients (client_id));
diesel::joinable!(authorizations -> workspaces (workspace_id));
diesel::joinable!(authorizations -> users (user_id));
diesel::joinable!(api_keys -> workspaces (workspace_id));

diesel::allow_tables_to_appear_in_same_query!(
    workspaces,
    users,
    memberships,
    clients,
    sessions,
    consent_requests,
    authorizations,
    auth_codes,
    refresh_tokens,
    access_tokens,
    revocation_events,
    signing_keys,
    api_keys,
    tags,
    forms,
    audit_events,
    identities,
    pending_sign_ins,
);

diesel::table! {
    usage_daily (kind, subject_id, day) {
        kind -> Text,
        subject_id -> Text,
        day -> BigInt,
        count -> BigInt,
    }
}

diesel::table! {
    mailboxes (id) {
        id -> Text,
        workspace_id -> Text,
        address -> Text,
        address_lower -> Text,
        created_at -> BigInt,
        created_by -> Text,
    }
}

diesel::table! {
    mailbox_auth_keys (id) {
        id -> Text,
        mailbox_id -> Text,
        name -> Text,
        public_id -> Text,
        secret_hash -> Text,
        created_by -> Text,
        created_at -> BigInt,
        disabled_at -> Nullable<BigInt>,
        rotated_at -> Nullable<BigInt>,
        usage_count -> BigInt,
        last_used_at -> Nullable<BigInt>,
        allowed_ips -> Nullable<Text>,
        expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    sending_domains (id) {
        id -> Text,
        workspace_id -> Text,
        domain -> Text,
        status -> Text,
        token -> Text,
        by_operator -> Bool,
        created_by -> Text,
        created_at -> BigInt,
        verified_at -> Nullable<BigInt>,
        checked_at -> Nullable<BigInt>,
        missing_since -> Nullable<BigInt>,
    }
}

diesel::joinable!(mailboxes -> workspaces (workspace_id));
diesel::joinable!(sending_domains -> workspaces (workspace_id));
diesel::joinable!(mailbox_auth_keys -> mailboxes (mailbox_id));

// Only the new pairs: a pair listed twice would implement its traits twice.
diesel::allow_tables_to_appear_in_same_query!(mailboxes, mailbox_auth_keys);
diesel::allow_tables_to_appear_in_same_query!(mailboxes, workspaces);
diesel::allow_tables_to_appear_in_same_query!(mailboxes, users);
diesel::allow_tables_to_appear_in_same_query!(mailboxes, api_keys);
diesel::allow_tables_to_appear_in_same_query!(mailbox_auth_keys, workspaces);
diesel::allow_tables_to_appear_in_same_query!(mailbox_auth_keys, users);

diesel::table! {
    admin_tokens (id) {
        id -> Text,
        name -> Text,
        token_hash -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    idempotency_keys (token_id, path, idem_key) {
        token_id -> Text,
        path -> Text,
        idem_key -> Text,
        body_hash -> Text,
        status -> Integer,
        response -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    events (id) {
        id -> Text,
        workspace_id -> Nullable<Text>,
        event_type -> Text,
        body -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        url -> Text,
        event_types -> Text,
        secret_sealed -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        endpoint_id -> Text,
        event_id -> Text,
        event_type -> Text,
        status -> Text,
        attempts -> Integer,
        last_status_code -> Nullable<Integer>,
        next_attempt_at -> BigInt,
        lease_until -> BigInt,
        lease_owner -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(webhook_deliveries, webhook_endpoints, events);

diesel::table! {
    resources (id) {
        id -> Text,
        identifier -> Text,
        identifier_key -> Text,
        name -> Text,
        client_id -> Text,
        secret_hash -> Text,
        routes -> Text,
        created_at -> BigInt,
    }
}
diesel::allow_tables_to_appear_in_same_query!(sending_domains, workspaces);
diesel::allow_tables_to_appear_in_same_query!(sending_domains, mailboxes);

diesel::table! {
    used_jtis (expires_at, key) {
        expires_at -> BigInt,
        key -> Binary,
    }
}

diesel::table! {
    trusted_issuers (id) {
        id -> Text,
        workspace_id -> Text,
        issuer -> Text,
        jwks_uri -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(trusted_issuers -> workspaces (workspace_id));
diesel::allow_tables_to_appear_in_same_query!(trusted_issuers, workspaces);
diesel::allow_tables_to_appear_in_same_query!(trusted_issuers, memberships);

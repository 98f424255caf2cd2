//! JavaScript and TypeScript read as Node frameworks read them: `process.env.X || 'literal'`,
//! `?? 'literal'` and destructuring defaults, literal session and JWT secrets, dotenv loaders,
//! TypeORM's `synchronize`/`migrationsRun`, and SQLite as the configured database.

use super::app::{AppFact, Need, Src, fallback, found, framework_secret, group};
use crate::text::reads_env;
use crate::walk::SourceFile;

cached!(
    env_or_re,
    r#"process\.env(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*["'`]([A-Za-z_][A-Za-z0-9_]*)["'`]\s*\])\s*(?:\|\||\?\?)\s*["'`]([^"'`\n]*)["'`]"#
);
cached!(
    destructure_re,
    r"(?:const|let|var)\s*\{([^}]{1,4000})\}\s*=\s*process\.env\b"
);
cached!(
    destructure_default_re,
    r#"\b([A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*[A-Za-z_][A-Za-z0-9_]*\s*)?=\s*["'`]([^"'`\n]*)["'`]"#
);
cached!(
    helper_re,
    r#"\b(\w*[Ee]nv\w*)\(\s*["'`]([A-Z][A-Z0-9_]*)["'`]\s*,\s*["'`]([^"'`\n]*)["'`]\s*\)"#
);
cached!(
    secret_option_re,
    r#"\bsecret(?:OrKey|OrPrivateKey)?\s*:\s*["'`]([^"'`\n]+)["'`]"#
);
cached!(
    jwt_call_re,
    r#"\bjwt\.(?:sign|verify)\(\s*[^,\n]+,\s*["'`]([^"'`\n]+)["'`]"#
);
cached!(
    cookie_parser_re,
    r#"\bcookieParser\(\s*["'`]([^"'`\n]+)["'`]"#
);
cached!(
    dotenv_re,
    r#"require\(\s*["']dotenv["']\s*\)\s*\.config\(([^)]*)\)|\bdotenv\.config\(([^)]*)\)|^\s*config\(\s*(\{[^)]*path[^)]*)\)|import\s+["']dotenv/config["']|require\(\s*["']dotenv/config["']\s*\)|process\.loadEnvFile\(([^)]*)\)"#
);
cached!(
    register_re,
    r#"require\(\s*["'](?:ts-node/register|@babel/register|babel-register|esbuild-register|@swc/register)[^"']*["']\s*\)"#
);
cached!(string_lit_re, r#"["'`]([^"'`\n]+)["'`]"#);
cached!(
    typeorm_sync_re,
    r"\b(?:synchronize|migrationsRun)\s*:\s*true\b"
);
cached!(
    sqlite_re,
    r#"\bdialect\s*:\s*["']sqlite["']|\bclient\s*:\s*["'](?:sqlite3?|better-sqlite3)["']|\bnew\s+sqlite3\.Database\(|\btype\s*:\s*["'](?:sqlite|better-sqlite3)["']"#
);
cached!(prisma_sqlite_re, r#"(?m)^\s*provider\s*=\s*"sqlite""#);

use super::app::contains;

/// Facts from one JavaScript or TypeScript file.
pub(super) fn facts(file: &SourceFile) -> Vec<AppFact> {
    let src = Src::new(file);
    let t = src.text;
    let mut out = Vec::new();
    if contains(t, b"process.env") {
        for c in env_or_re().captures_iter(t) {
            let pos = c.get(0).map_or(0, |m| m.start());
            let var = if c.get(1).is_some() {
                group(&c, 1)
            } else {
                group(&c, 2)
            };
            found(
                &mut out,
                fallback(&src, pos, &var, &group(&c, 3), "`||`/`??` with a literal"),
            );
        }
        for c in destructure_re().captures_iter(t) {
            let Some(body) = c.get(1) else { continue };
            for d in destructure_default_re().captures_iter(body.as_bytes()) {
                let pos = body.start() + d.get(0).map_or(0, |m| m.start());
                found(
                    &mut out,
                    fallback(
                        &src,
                        pos,
                        &group(&d, 1),
                        &group(&d, 2),
                        "a destructuring default of process.env",
                    ),
                );
            }
        }
    }
    for c in helper_re().captures_iter(t) {
        let pos = c.get(0).map_or(0, |m| m.start());
        found(
            &mut out,
            fallback(
                &src,
                pos,
                &group(&c, 2),
                &group(&c, 3),
                "the env helper's default",
            ),
        );
    }
    let session_file = [
        &b"express-session"[..],
        b"cookie-session",
        b"session(",
        b"JwtModule",
        b"passport-jwt",
        b"jsonwebtoken",
        b"@fastify/session",
        b"iron-session",
    ]
    .iter()
    .any(|n| contains(t, n));
    if session_file {
        for c in secret_option_re().captures_iter(t) {
            let pos = c.get(0).map_or(0, |m| m.start());
            found(
                &mut out,
                framework_secret(
                    &src,
                    pos,
                    &group(&c, 1),
                    "the session or token middleware signs with this literal secret",
                ),
            );
        }
    }
    for c in jwt_call_re()
        .captures_iter(t)
        .chain(cookie_parser_re().captures_iter(t))
    {
        let pos = c.get(0).map_or(0, |m| m.start());
        found(
            &mut out,
            framework_secret(
                &src,
                pos,
                &group(&c, 1),
                "tokens or cookies are signed with this literal secret",
            ),
        );
    }
    if contains(t, b"dotenv") || contains(t, b"loadEnvFile") {
        for c in dotenv_re().captures_iter(t) {
            let pos = c.get(0).map_or(0, |m| m.start());
            let Some((line, text)) = src.at(pos) else {
                continue;
            };
            let args = (1..=4)
                .filter_map(|i| c.get(i))
                .map(|m| m.as_bytes())
                .next()
                .unwrap_or(b"");
            if c.get(3).is_some() && !contains(t, b"dotenv") {
                continue;
            }
            let file_arg = string_lit_re()
                .captures_iter(args)
                .map(|s| group(&s, 1))
                .filter(|s| s.contains(".env") || s.ends_with("env"))
                .last();
            out.push(AppFact::DotenvLoad {
                rel: file.rel.clone(),
                line,
                evidence: text,
                file: file_arg,
            });
        }
    }
    for m in register_re().find_iter(t) {
        if let Some((line, text)) = src.at(m.start()) {
            out.push(AppFact::RuntimeCompiler {
                rel: file.rel.clone(),
                line,
                evidence: text.trim().to_owned(),
            });
        }
    }
    let orm = [&b"typeorm"[..], b"TypeOrmModule", b"DataSource("]
        .iter()
        .any(|n| contains(t, n));
    if orm {
        for m in typeorm_sync_re().find_iter(t) {
            if let Some((_, line)) = src.at(m.start())
                && !reads_env(line.as_bytes())
                && let Some(f) = src.finding("TF12-MIGRATE-AT-START", m.start(), &line)
            {
                out.push(AppFact::Found(f.because(
                    "TypeORM changes the schema (or runs migrations) every time the app connects",
                )));
            }
        }
    }
    for m in sqlite_re().find_iter(t) {
        if let Some((_, line)) = src.at(m.start())
            && !reads_env(line.as_bytes())
            && let Some(f) = src.finding("TF04-SQLITE-IN-PROD", m.start(), &line)
        {
            out.push(AppFact::Pending {
                finding: f,
                need: Need::NoServerDb,
            });
        }
    }
    out
}

/// A Prisma schema whose datasource is SQLite.
pub(super) fn prisma(file: &SourceFile) -> Vec<AppFact> {
    let src = Src::new(file);
    let mut out = Vec::new();
    if let Some(m) = prisma_sqlite_re().find(src.text)
        && let Some((_, line)) = src.at(m.start())
        && let Some(f) = src.finding("TF04-SQLITE-IN-PROD", m.start(), &line)
    {
        out.push(AppFact::Pending {
            finding: f,
            need: Need::NoServerDb,
        });
    }
    out
}

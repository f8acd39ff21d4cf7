-- pipescan's PostgreSQL schema: amavisd-new 2.13's tables (README.sql-pg), column for column,
-- so that a site keeps its database and the tools built on it (iRedAdmin, Modoboa, MailZu).
-- Printed by `pipescan sql schema`; load it with
--   psql -v ON_ERROR_STOP=1 -d mail -f schema.sql
-- then grant the role pipescan connects as what it needs (see "Grants" at the end).

-- Lookups (read only: may be served by a replica).

CREATE TABLE policy (
  id            serial PRIMARY KEY,
  policy_name   varchar(32),

  virus_lover           char(1) default NULL,
  spam_lover            char(1) default NULL,
  unchecked_lover       char(1) default NULL,
  banned_files_lover    char(1) default NULL,
  bad_header_lover      char(1) default NULL,

  bypass_virus_checks   char(1) default NULL,
  bypass_spam_checks    char(1) default NULL,
  bypass_banned_checks  char(1) default NULL,
  bypass_header_checks  char(1) default NULL,

  virus_quarantine_to      varchar(64) default NULL,
  spam_quarantine_to       varchar(64) default NULL,
  banned_quarantine_to     varchar(64) default NULL,
  unchecked_quarantine_to  varchar(64) default NULL,
  bad_header_quarantine_to varchar(64) default NULL,
  clean_quarantine_to      varchar(64) default NULL,
  archive_quarantine_to    varchar(64) default NULL,

  spam_tag_level  real default NULL,
  spam_tag2_level real default NULL,
  spam_tag3_level real default NULL,
  spam_kill_level real default NULL,

  spam_dsn_cutoff_level        real default NULL,
  spam_quarantine_cutoff_level real default NULL,

  addr_extension_virus      varchar(64) default NULL,
  addr_extension_spam       varchar(64) default NULL,
  addr_extension_banned     varchar(64) default NULL,
  addr_extension_bad_header varchar(64) default NULL,

  warnvirusrecip      char(1)     default NULL,
  warnbannedrecip     char(1)     default NULL,
  warnbadhrecip       char(1)     default NULL,
  newvirus_admin      varchar(64) default NULL,
  virus_admin         varchar(64) default NULL,
  banned_admin        varchar(64) default NULL,
  bad_header_admin    varchar(64) default NULL,
  spam_admin          varchar(64) default NULL,
  spam_subject_tag    varchar(64) default NULL,
  spam_subject_tag2   varchar(64) default NULL,
  spam_subject_tag3   varchar(64) default NULL,
  message_size_limit  integer     default NULL,
  banned_rulenames    varchar(64) default NULL,
  disclaimer_options  varchar(64) default NULL,
  forward_method      varchar(64) default NULL,
  sa_userconf         varchar(64) default NULL,
  sa_username         varchar(64) default NULL
);

-- Recipients (full address, user+ext@domain, user@domain, user, @domain, @.domain, @.), each
-- with a policy; the highest priority among the matching keys wins.
CREATE TABLE users (
  id         serial  PRIMARY KEY,
  priority   integer NOT NULL DEFAULT 7,
  policy_id  integer NOT NULL DEFAULT 1 CHECK (policy_id >= 0) REFERENCES policy(id),
  email      bytea   NOT NULL UNIQUE,
  fullname   varchar(255) DEFAULT NULL
);

-- Senders as wblist names them, in the same key forms.
CREATE TABLE mailaddr (
  id         serial  PRIMARY KEY,
  priority   integer NOT NULL DEFAULT 9,
  email      bytea   NOT NULL UNIQUE
);

-- Per-recipient white/blacklist: wb is W or Y (white), B or N (black), a space (neutral).
CREATE TABLE wblist (
  rid        integer NOT NULL CHECK (rid >= 0) REFERENCES users(id),
  sid        integer NOT NULL CHECK (sid >= 0) REFERENCES mailaddr(id),
  wb         varchar(10) NOT NULL,
  PRIMARY KEY (rid,sid)
);

-- Message log and quarantine (read-write: the primary, never a replica).

CREATE TABLE maddr (
  id         serial       PRIMARY KEY,
  partition_tag integer   DEFAULT 0,
  email      bytea        NOT NULL,
  domain     varchar(255) NOT NULL,
  CONSTRAINT part_email UNIQUE (partition_tag,email)
);

CREATE TABLE msgs (
  partition_tag integer     DEFAULT 0,
  mail_id     bytea         NOT NULL,
  secret_id   bytea         DEFAULT '',
  am_id       varchar(20)   NOT NULL,
  time_num    integer NOT NULL CHECK (time_num >= 0),
  time_iso timestamp WITH TIME ZONE NOT NULL,
  sid         integer NOT NULL CHECK (sid >= 0),
  policy      varchar(255)  DEFAULT '',
  client_addr varchar(255)  DEFAULT '',
  size        integer NOT NULL CHECK (size >= 0),
  originating char(1) DEFAULT ' ' NOT NULL,
  content     char(1),
  quar_type  char(1),
  quar_loc   varchar(255)  DEFAULT '',
  dsn_sent   char(1),
  spam_level real,
  message_id varchar(255)  DEFAULT '',
  from_addr  varchar(255)  DEFAULT '',
  subject    varchar(255)  DEFAULT '',
  host       varchar(255)  NOT NULL,
  CONSTRAINT msgs_partition_mail UNIQUE (partition_tag,mail_id),
  PRIMARY KEY (partition_tag,mail_id)
);
CREATE INDEX msgs_idx_sid      ON msgs (sid);
CREATE INDEX msgs_idx_mess_id  ON msgs (message_id);
CREATE INDEX msgs_idx_time_iso ON msgs (time_iso);
CREATE INDEX msgs_idx_time_num ON msgs (time_num);

CREATE TABLE msgrcpt (
  partition_tag integer DEFAULT 0,
  mail_id    bytea    NOT NULL,
  rseqnum    integer  DEFAULT 0   NOT NULL,
  rid        integer  NOT NULL,
  is_local   char(1)  DEFAULT ' ' NOT NULL,
  content    char(1)  DEFAULT ' ' NOT NULL,
  ds         char(1)  NOT NULL,
  rs         char(1)  NOT NULL,
  bl         char(1)  DEFAULT ' ',
  wl         char(1)  DEFAULT ' ',
  bspam_level real,
  smtp_resp  varchar(255) DEFAULT '',
  CONSTRAINT msgrcpt_partition_mail_rseq UNIQUE (partition_tag,mail_id,rseqnum),
  PRIMARY KEY (partition_tag,mail_id,rseqnum)
);
CREATE INDEX msgrcpt_idx_mail_id  ON msgrcpt (mail_id);
CREATE INDEX msgrcpt_idx_rid      ON msgrcpt (rid);

CREATE TABLE quarantine (
  partition_tag integer  DEFAULT 0,
  mail_id    bytea   NOT NULL,
  chunk_ind  integer NOT NULL CHECK (chunk_ind >= 0),
  mail_text  bytea   NOT NULL,
  PRIMARY KEY (partition_tag,mail_id,chunk_ind)
);

-- Grants, for a role "pipescan" (amavisd's README grants the same to "amavis"):
--   GRANT SELECT ON policy, users, mailaddr, wblist TO pipescan;
--   GRANT SELECT, INSERT, UPDATE, DELETE ON maddr, msgs, msgrcpt, quarantine TO pipescan;
--   GRANT USAGE, UPDATE ON maddr_id_seq TO pipescan;

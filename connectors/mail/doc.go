// Package mail is Schakel's e-mail transport: advisories come in
// from a mailbox (IMAPSource, go-imap v2) or over SMTP (SMTPIntake, go-smtp
// server), and warnings go out through an SMTP relay (Sink, the
// gateway.ChannelEmail channel). Rendering and parsing of messages is
// mappings/mail's; this package only moves them.
//
// The sink speaks SMTP itself (smtpclient.go) rather than through go-smtp's
// client, because that client sends one command per round trip and the
// channel pipelines MAIL, RCPT and DATA (RFC 2920) when the relay offers it.
// It keeps a small pool of authenticated sessions, so consecutive warnings
// skip the TCP, TLS and AUTH round trips.
//
// Redis keys (prefix = redis.prefix):
//
//	<prefix>:mail:{t<hash>}:hold|done|lock  digests per e-mail target (digest.go)
//	<prefix>:mail:{imap:<source>}:lease     one replica reads a mailbox (leader.go)
//	store cursor "<source>" = "<uidvalidity>:<uid>"  last processed message
package mail

# pipescan import-amavisd: evaluates amavisd-new configuration files the way amavisd does
# (`do FILE` in package Amavis::Conf, in the order given) and prints, as JSON on stdout, every
# package variable whose value the files changed. Perl values are written in tagged forms:
#   undef -> null, a string or number as is, an array -> [..], a hash -> {"hash": {..}},
#   a reference to a scalar -> {"ref": ..}, qr// -> {"re": PATTERN, "flags": "i"},
#   new_RE(...) -> {"new_re": [{"re", "flags", "value"}..]}, \&name -> {"code": "name"},
#   an unknown helper's result -> {"call": "name"}, any other object -> {"object": CLASS}.
# Arguments: the files to read. Exit 0, or 78 with the reason on stderr when a file cannot be
# evaluated (amavisd would refuse to start with it, too).
use strict;
use warnings;
use JSON::PP ();
use Scalar::Util ();
use B ();
use POSIX ();

package Amavis::Conf;
no warnings;
use constant D_TEMPFAIL => -4;
use constant D_REJECT   => -3;
use constant D_BOUNCE   => -2;
use constant D_DISCARD  => 0;
use constant D_PASS     => 1;
use constant CC_CATCHALL => 0;  use constant CC_CLEAN => 1;     use constant CC_MTA => 2;
use constant CC_OVERSIZED => 3; use constant CC_BADH => 4;      use constant CC_SPAMMY => 5;
use constant CC_SPAM => 6;      use constant CC_UNCHECKED => 7; use constant CC_BANNED => 8;
use constant CC_VIRUS => 9;

# amavisd's own defaults that configuration files build on (Amavis::Conf, 2.13).
our ($MYHOME, $myproduct_name, $mydomain, $myhostname, $QUARANTINEDIR);
our ($virus_quarantine_to, $banned_quarantine_to, $unchecked_quarantine_to,
     $spam_quarantine_to, $bad_header_quarantine_to, $sa_spam_modifies_subj);
our ($final_virus_destiny, $final_banned_destiny, $final_unchecked_destiny,
     $final_spam_destiny, $final_bad_header_destiny);
$MYHOME = '/var/amavis';
$myproduct_name = 'amavis';
$mydomain = '!change-mydomain-variable!.example.com';
$myhostname = (POSIX::uname())[1];
$virus_quarantine_to = 'virus-quarantine';
$banned_quarantine_to = 'banned-quarantine';
$unchecked_quarantine_to = 'unchecked-quarantine';
$spam_quarantine_to = 'spam-quarantine';
$bad_header_quarantine_to = 'bad-header-quarantine';
$sa_spam_modifies_subj = 1;
$final_virus_destiny = D_DISCARD;      $final_banned_destiny = D_DISCARD;
$final_unchecked_destiny = D_PASS;     $final_spam_destiny = D_PASS;
$final_bad_header_destiny = D_PASS;
# The lookup maps, built from the legacy variables as amavisd builds them.
for my $t (qw(local_domains bypass_virus_checks bypass_spam_checks bypass_banned_checks
              bypass_header_checks virus_lovers spam_lovers banned_files_lovers
              bad_header_lovers whitelist_sender blacklist_sender)) {
  no strict 'refs';
  @{"Amavis::Conf::${t}_maps"} =
    (\%{"Amavis::Conf::$t"}, \@{"Amavis::Conf::${t}_acl"}, \${"Amavis::Conf::${t}_re"});
}

# The helpers configuration files call. Lookup objects are kept as data; programs and daemons
# named by code references are named, never run.
sub new_RE { bless { list => [@_] }, 'Amavis::Lookup::RE' }
sub Amavis::Lookup::RE::new { shift; Amavis::Conf::new_RE(@_) }
sub read_hash {
  my $h = ref $_[0] eq 'HASH' ? shift : {};
  for my $f (@_) {
    my $fh = main::open_list($f) or return bless { name => 'read_hash of an unreadable file' }, 'Pipescan::Call';
    while (<$fh>) {
      chomp; s/^\s*#.*//; s/\s+#.*//; s/^\s+//; s/\s+\z//;
      next if $_ eq '';
      my ($k, $v) = split(/\s+/, $_, 2);
      $h->{lc $k} = defined $v ? $v : 1;
    }
  }
  $h;
}
sub read_array {
  my $a = ref $_[0] eq 'ARRAY' ? shift : [];
  for my $f (@_) {
    my $fh = main::open_list($f) or return bless { name => 'read_array of an unreadable file' }, 'Pipescan::Call';
    while (<$fh>) { chomp; s/^\s*#.*//; s/\s+#.*//; s/^\s+//; s/\s+\z//; push @$a, $_ if $_ ne '' }
  }
  $a;
}
sub read_text { my ($f) = @_; my $fh = main::open_list($f) or return undef; local $/; <$fh> }
sub read_l10n_templates { 1 }
sub read_cidr { read_array(@_) }
sub idn_to_ascii { lc $_[0] }
sub mail_idn_to_ascii { lc $_[0] }
sub dkim_key { 1 }
sub include_config_files { main::read_file($_) for @_; 1 }
sub include_optional_config_files { -e $_ && main::read_file($_) for @_; 1 }
sub c { no strict 'refs'; ${"Amavis::Conf::$_[0]"} }
sub cr { no strict 'refs'; \${"Amavis::Conf::$_[0]"} }
sub ca { no strict 'refs'; \@{"Amavis::Conf::$_[0]"} }
sub ask_daemon; sub ask_clamav; sub ask_av; sub sophos_savi; sub clamav_module_init;
our $AUTOLOAD;
sub AUTOLOAD { my $n = $AUTOLOAD; $n =~ s/.*:://; return if $n eq 'DESTROY'; bless { name => $n }, 'Pipescan::Call' }

package main;
no warnings 'once';

# A file a lookup helper names: one this host cannot read (a configuration copied from another
# server) is warned about and left out, as a setting that cannot be translated.
sub open_list {
  my ($f) = @_;
  open(my $fh, '<', $f) or do { print STDERR "pipescan import-amavisd: cannot read $f: $! (left out)\n"; return undef };
  $fh;
}

# Every name a file uses with a sigil is declared in Amavis::Conf first, as amavisd predeclares
# its variables, so `use strict` in the files accepts them.
sub declare {
  my ($text) = @_;
  my %seen;
  while ($text =~ /[\$\@%]#?\{?([A-Za-z_]\w*)/g) {
    my $n = $1;
    next if $seen{$n}++ || $n =~ /^(?:ENV|INC|ARGV|ARGVOUT|SIG|STDIN|STDOUT|STDERR|_|a|b)\z/;
    eval "package Amavis::Conf; use vars qw(\$$n \@$n \%$n); 1";
  }
}

sub read_file {
  my ($f) = @_;
  my $path = $f =~ m{^\.{0,2}/} ? $f : "./$f";
  local $/ = $/;
  $! = 0;
  my $r = do { package Amavis::Conf; do $path };
  if (!defined $r) {
    die "$f: $@" if $@ ne '';
    die "$f: cannot read: $!\n" if $! != 0;
  }
  1;
}

sub plain {
  my ($v, $depth) = @_;
  return '...' if $depth > 30;
  return $v if !ref $v;
  my $class = Scalar::Util::blessed($v);
  if (defined $class) {
    return { re => (re::regexp_pattern($v))[0], flags => (re::regexp_pattern($v))[1] }
      if re::is_regexp($v);
    return { new_re => [map { regex_entry($_, $depth) } @{$v->{list}}] }
      if $class eq 'Amavis::Lookup::RE';
    return { call => $v->{name} } if $class eq 'Pipescan::Call';
    return { object => $class };
  }
  my $t = ref $v;
  return [map { plain($_, $depth + 1) } @$v] if $t eq 'ARRAY';
  return { hash => { map { ($_ => plain($v->{$_}, $depth + 1)) } keys %$v } } if $t eq 'HASH';
  return { ref => plain($$v, $depth + 1) } if $t eq 'SCALAR' || $t eq 'REF';
  return { code => B::svref_2object($v)->GV->NAME } if $t eq 'CODE';
  { object => $t };
}

sub regex_entry {
  my ($e, $depth) = @_;
  my ($re, $value) = ref $e eq 'ARRAY' ? @$e : ($e, 1);
  return { other => plain($e, $depth + 1) } if !re::is_regexp($re);
  my ($pat, $flags) = re::regexp_pattern($re);
  { re => $pat, flags => $flags, value => plain($value, $depth + 1) };
}

# Every variable of Amavis::Conf as "$name", "@name", "%name" => its tagged form.
sub snapshot {
  my %out;
  no strict 'refs';
  for my $n (keys %Amavis::Conf::) {
    next if $n =~ /::\z/ || $n !~ /^[A-Za-z_]\w*\z/ || $n eq 'AUTOLOAD';
    my $g = \$Amavis::Conf::{$n};
    next if ref $g ne 'GLOB';
    my $glob = *{"Amavis::Conf::$n"};
    my $s = *{$glob}{SCALAR};
    $out{"\$$n"} = plain($$s, 0) if $s && defined $$s;
    $out{"\@$n"} = plain(*{$glob}{ARRAY}, 0) if *{$glob}{ARRAY} && @{*{$glob}{ARRAY}};
    $out{"%$n"} = plain(*{$glob}{HASH}, 0) if *{$glob}{HASH} && %{*{$glob}{HASH}};
  }
  \%out;
}

my $json = JSON::PP->new->canonical->allow_nonref;
my @texts;
for my $f (@ARGV) {
  open(my $fh, '<', $f) or do { print STDERR "$f: $!\n"; exit 66 };
  local $/;
  declare(scalar <$fh>);
}
my $before = snapshot();
for my $f (@ARGV) {
  eval { read_file($f); 1 } or do { print STDERR "error in amavisd configuration $@"; exit 78 };
}
my $after = snapshot();
my %set;
for my $k (keys %$after) {
  my $was = exists $before->{$k} ? $json->encode($before->{$k}) : '';
  $set{$k} = $after->{$k} if $json->encode($after->{$k}) ne $was;
}
print $json->encode({ files => [@ARGV], set => \%set }), "\n";
exit 0;

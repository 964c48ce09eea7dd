#!/usr/bin/perl
# SPDX-License-Identifier: MIT
# Builds Meridian's sample GeoIP database from its JSON source with MaxMind's own writer
# (MaxMind::DB::Writer::Tree, Debian package libmaxmind-db-writer-perl), so the file is a
# real MMDB in the GeoIP2-City schema. Deterministic: same source, same bytes.
#
#   perl geoip/build-mmdb.pl geoip/sample.json geoip/sample.mmdb
#
# The source (see geoip/sample.json and geoip/README) holds `places` (named records) and
# `networks`, each a CIDR network with either `place` or the record's fields inline:
# country, registered_country, continent, latitude + longitude, city. The output is an
# IPv6 tree with the IPv4 space aliased (::ffff:0:0/96, 6to4, Teredo), written to a
# temporary name beside OUT and renamed, so a reader never sees half a file.
use strict;
use warnings;

use JSON::PP ();
use MaxMind::DB::Writer::Tree ();

sub usage_die { die "usage: perl build-mmdb.pl SRC.json OUT.mmdb\n" }

sub fail {
    my ( $where, $what ) = @_;
    die "build-mmdb: $where: $what\n";
}

my ( $src, $out ) = @ARGV;
usage_die() unless defined $out && @ARGV == 2;

my $json = do {
    open my $fh, '<:raw', $src or fail( $src, "cannot open: $!" );
    local $/;
    <$fh>;
};
my $doc = eval { JSON::PP->new->relaxed(0)->decode($json) }
    or fail( $src, "not valid JSON: $@" );

for my $key (qw(database_type description build_epoch places networks)) {
    fail( $src, "missing top-level key '$key'" ) unless exists $doc->{$key};
}
fail( $src, "build_epoch must be a positive integer" )
    unless $doc->{build_epoch} =~ /\A[1-9][0-9]*\z/;

# Turns one flat description (a place, or a network's inline fields) into a
# GeoIP2-City-shaped record; dies with `where` on anything a reader would misread.
sub city_record {
    my ( $where, $f ) = @_;
    my %known = map { $_ => 1 }
        qw(network place city country registered_country continent latitude longitude);
    for my $k ( sort keys %{$f} ) {
        fail( $where, "unknown field '$k'" ) unless $known{$k};
    }
    my %rec;
    for my $k (qw(country registered_country)) {
        next unless defined $f->{$k};
        fail( $where, "$k must be an ISO 3166-1 alpha-2 code" )
            unless $f->{$k} =~ /\A[A-Z]{2}\z/;
        $rec{$k} = { iso_code => $f->{$k} };
    }
    if ( defined $f->{continent} ) {
        fail( $where, "continent must be a two-letter code" )
            unless $f->{continent} =~ /\A(?:AF|AN|AS|EU|NA|OC|SA)\z/;
        $rec{continent} = { code => $f->{continent} };
    }
    fail( $where, "needs country or registered_country" )
        unless $rec{country} || $rec{registered_country};
    if ( defined $f->{latitude} || defined $f->{longitude} ) {
        my ( $lat, $lon ) = ( $f->{latitude}, $f->{longitude} );
        fail( $where, "latitude and longitude go together" )
            unless defined $lat && defined $lon;
        fail( $where, "latitude out of range" )  unless $lat >= -90  && $lat <= 90;
        fail( $where, "longitude out of range" ) unless $lon >= -180 && $lon <= 180;
        $rec{location} = { latitude => 0 + $lat, longitude => 0 + $lon };
    }
    $rec{city} = { names => { en => $f->{city} } } if defined $f->{city};
    return \%rec;
}

my %types = (
    city               => 'map',
    continent          => 'map',
    country            => 'map',
    location           => 'map',
    names              => 'map',
    registered_country => 'map',
    code               => 'utf8_string',
    en                 => 'utf8_string',
    iso_code           => 'utf8_string',
    latitude           => 'double',
    longitude          => 'double',
);

my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => 6,
    record_size              => 24,
    database_type            => $doc->{database_type},
    languages                => ['en'],
    description              => { en => $doc->{description} },
    alias_ipv6_to_ipv4       => 1,
    remove_reserved_networks => 0,    # the sample lives in documentation ranges
    map_key_type_callback    => sub {
        $types{ $_[0] } // die "build-mmdb: no MMDB type for key '$_[0]'\n";
    },
    _build_epoch => 0 + $doc->{build_epoch},    # fixed, so the output is reproducible
);

my %places;
for my $name ( sort keys %{ $doc->{places} } ) {
    $places{$name} = city_record( "place $name", $doc->{places}{$name} );
}

my %seen;
for my $n ( @{ $doc->{networks} } ) {
    my $net = $n->{network} // fail( $src, "a network entry without 'network'" );
    fail( $net, "listed twice" ) if $seen{$net}++;
    my $rec;
    if ( defined $n->{place} ) {
        fail( $net, "'place' excludes inline fields" ) if keys %{$n} != 2;
        $rec = $places{ $n->{place} } // fail( $net, "unknown place '$n->{place}'" );
    }
    else {
        $rec = city_record( $net, $n );
    }
    eval { $tree->insert_network( $net, $rec ); 1 } or fail( $net, "$@" );
}

my $tmp = "$out.tmp.$$";
open my $fh, '>:raw', $tmp or fail( $tmp, "cannot create: $!" );
$tree->write_tree($fh);
close $fh or fail( $tmp, "cannot write: $!" );
rename $tmp, $out or do { unlink $tmp; fail( $out, "cannot rename: $!" ) };

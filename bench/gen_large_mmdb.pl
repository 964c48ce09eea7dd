#!/usr/bin/perl
# SPDX-License-Identifier: MIT
# Builds the large GeoIP database of bench/run.sh's `geo` suite with MaxMind's own writer
# (MaxMind::DB::Writer::Tree, Debian package libmaxmind-db-writer-perl, the writer of
# geoip/build-mmdb.pl), so that lookups walk a tree of realistic size: about NETWORKS (default
# 1,000,000) non-overlapping IPv4 networks in an IPv6 tree with the IPv4 space aliased, record
# size 28, like MaxMind's GeoIP2-City. Also writes CLIENTS (one IPv4 address a line, about
# NETWORKS / 10 of them, shuffled) chosen inside the database's networks, for
# bench/geo_clients.lua to put in X-Forwarded-For, and CLIENTS.regions: four of those
# addresses per bench region, "ADDRESS REGION" a line, for run.sh to check the routing.
#
#   perl bench/gen_large_mmdb.pl OUT.mmdb CLIENTS.txt [NETWORKS]
#
# Deterministic (fixed seed, fixed build epoch): the same NETWORKS give the same bytes.
# Networks: walking up the IPv4 unicast space (1.0.0.0 to 223.255.255.255 minus the private,
# loopback, link-local, shared and documentation ranges) with random gaps sized so the walk ends
# near the top: mostly /24s, some /16 to /23 and /25 to /28. Records, in the GeoIP2-City
# shape Meridian reads (country{iso_code}, continent{code}, location{latitude, longitude}):
# 80% near one of the five bench regions (eu Frankfurt, us-east Ashburn, us-west The Dalles, ap
# Singapore, sa Sao Paulo; within a few degrees, with the countries around them), 20% anywhere
# in the world; 20,000 distinct records in all (a City database's many cities), reused.
# Prints its progress and a summary (networks, records, clients per region, seconds) to stderr.
use strict;
use warnings;

use MaxMind::DB::Writer::Tree ();
use Time::HiRes ();

my ( $out, $clients_out, $want ) = @ARGV;
die "usage: perl gen_large_mmdb.pl OUT.mmdb CLIENTS.txt [NETWORKS]\n"
    unless defined $clients_out && @ARGV <= 3;
$want //= 1_000_000;
die "gen_large_mmdb: NETWORKS must be a positive integer\n" unless $want =~ /\A[1-9][0-9]*\z/;

my $t_start = Time::HiRes::time();
srand(20261127);

# ---- records ------------------------------------------------------------------------------

# name, lat, lon, countries (with their continent) around it
my @regions = (
    [ 'eu',      50.11, 8.68,   [qw(DE:EU FR:EU NL:EU BE:EU AT:EU CH:EU PL:EU CZ:EU DK:EU LU:EU)] ],
    [ 'us-east', 38.9,  -77.0,  [qw(US:NA)] ],
    [ 'us-west', 45.6,  -121.2, [qw(US:NA CA:NA)] ],
    [ 'ap',      1.35,  103.8,  [qw(SG:AS MY:AS ID:AS)] ],
    [ 'sa',      -23.5, -46.6,  [qw(BR:SA PY:SA UY:SA)] ],
);
# anywhere in the world: country, continent, and a box its places are drawn from
my @world = (
    [qw(JP AS 31 43 130 145)],  [qw(IN AS 9 30 70 88)],     [qw(CN AS 22 42 100 122)],
    [qw(KR AS 34 38 126 129)],  [qw(AU OC -38 -12 115 153)], [qw(NZ OC -46 -35 168 178)],
    [qw(ZA AF -34 -23 18 32)],  [qw(NG AF 5 13 3 14)],      [qw(EG AF 22 31 25 34)],
    [qw(KE AF -4 4 34 41)],     [qw(RU EU 44 60 30 60)],    [qw(GB EU 50 58 -5 1)],
    [qw(ES EU 36 43 -9 3)],     [qw(IT EU 37 46 8 18)],     [qw(SE EU 55 66 12 23)],
    [qw(TR AS 36 41 27 44)],    [qw(SA AS 17 30 37 55)],    [qw(MX NA 16 30 -115 -87)],
    [qw(US NA 26 47 -123 -70)], [qw(CA NA 43 55 -125 -60)], [qw(AR SA -45 -22 -70 -55)],
    [qw(CL SA -45 -18 -73 -69)], [qw(CO SA -4 11 -77 -67)], [qw(PE SA -18 -3 -81 -69)],
);

sub round4 { return 0 + sprintf( '%.4f', $_[0] ) }

my ( @pool, @pool_region );    # records, and the region each was made for ('world')
my $n_regional = 16_000;       # 3,200 places per region
my $n_world    = 4_000;
for my $i ( 0 .. $n_regional - 1 ) {
    my $r = $regions[ $i % @regions ];
    my ( $cc, $cont ) = split /:/, $r->[3][ int( rand( @{ $r->[3] } ) ) ];
    push @pool, {
        country   => { iso_code => $cc },
        continent => { code     => $cont },
        location  => {
            latitude  => round4( $r->[1] + ( rand(8) - 4 ) ),
            longitude => round4( $r->[2] + ( rand(10) - 5 ) ),
        },
    };
    push @pool_region, $r->[0];
}
for my $i ( 0 .. $n_world - 1 ) {
    my $w = $world[ int( rand(@world) ) ];
    push @pool, {
        country   => { iso_code => $w->[0] },
        continent => { code     => $w->[1] },
        location  => {
            latitude  => round4( $w->[2] + rand( $w->[3] - $w->[2] ) ),
            longitude => round4( $w->[4] + rand( $w->[5] - $w->[4] ) ),
        },
    };
    push @pool_region, 'world';
}

my %types = (
    continent => 'map',
    country   => 'map',
    location  => 'map',
    code      => 'utf8_string',
    iso_code  => 'utf8_string',
    latitude  => 'double',
    longitude => 'double',
);

my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => 6,
    record_size              => 28,
    database_type            => 'Meridian-Bench-City',
    languages                => ['en'],
    description              => { en => "Meridian benchmark City database, $want networks" },
    alias_ipv6_to_ipv4       => 1,
    remove_reserved_networks => 0,      # we choose the ranges ourselves
    merge_strategy           => 'none', # networks never overlap
    map_key_type_callback    => sub {
        $types{ $_[0] } // die "gen_large_mmdb: no MMDB type for key '$_[0]'\n";
    },
    _build_epoch => 1764201600,          # fixed, so the output is reproducible
);

# ---- networks -----------------------------------------------------------------------------

# IPv4 ranges left out, as [first, last] 32-bit integers, in order
sub ip2int { my @o = split /\./, $_[0]; return ( $o[0] << 24 ) | ( $o[1] << 16 ) | ( $o[2] << 8 ) | $o[3] }
sub int2ip { my $n = shift; return join '.', ( $n >> 24 ) & 255, ( $n >> 16 ) & 255, ( $n >> 8 ) & 255, $n & 255 }
my @skip = map {
    my ( $net, $len ) = split m{/};
    my $a = ip2int($net);
    [ $a, $a + 2**( 32 - $len ) - 1 ]
} qw(10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 192.0.0.0/24
    192.0.2.0/24 192.88.99.0/24 192.168.0.0/16 198.18.0.0/15 198.51.100.0/24 203.0.113.0/24);
my $lo  = ip2int('1.0.0.0');
my $top = ip2int('224.0.0.0');    # exclusive
my $space = $top - $lo;
$space -= $_->[1] - $_->[0] + 1 for @skip;

# prefix length: 84% /24, 6% /22-/23, 1.5% /16-/20, 8.5% /25-/28
sub pick_len {
    my $x = rand();
    return 24                      if $x < 0.84;
    return 22 + int( rand(2) )     if $x < 0.90;
    return 16 + int( rand(5) )     if $x < 0.915;
    return 25 + int( rand(4) );
}

my ( $pos, $made, $clients, $skip_i ) = ( $lo, 0, 0, 0 );
my $used = 0;    # addresses walked past, not counting skipped ranges
my %per_region;
my @client_ips;
my %check;    # region -> a few client addresses made for it, for run.sh's routing check
my $client_p = 0.1;    # share of networks that give one client address
my $last_report = $t_start;
while ( $made < $want ) {
    my $len  = pick_len();
    my $size = 2**( 32 - $len );
    # a random gap, so that the walk ends near the top of the space
    my $left = 0.97 * ( $space - $used ) / ( $want - $made );
    my $gap  = int( rand( 2 * ( $left > $size * 1.5 ? $left - $size * 1.5 : 0 ) ) );
    my $start = $pos + $gap;
    $start = ( $start + $size - 1 ) & ~( $size - 1 ) & 0xffffffff;    # aligned
    # step over the skipped ranges
    my $moved = 1;
    while ($moved) {
        $moved = 0;
        for my $s (@skip) {
            if ( $start <= $s->[1] && $start + $size - 1 >= $s->[0] ) {
                $start = ( ( $s->[1] + 1 ) + $size - 1 ) & ~( $size - 1 ) & 0xffffffff;
                $moved = 1;
            }
        }
    }
    last if $start + $size > $top;
    my $end = $start + $size;
    my $skipped_between = 0;
    for my $s (@skip) {
        $skipped_between += $s->[1] - $s->[0] + 1 if $s->[0] >= $pos && $s->[1] < $end;
    }
    $used += $end - $pos - $skipped_between;
    $pos = $end;

    my $ri = int( rand(@pool) );
    $tree->insert_network( int2ip($start) . "/$len", $pool[$ri] );
    $made++;
    if ( rand() < $client_p ) {
        # an address inside: not the network or broadcast address where there is room
        my $off = $size > 2 ? 1 + int( rand( $size - 2 ) ) : 0;
        push @client_ips, int2ip( $start + $off );
        $per_region{ $pool_region[$ri] }++;
        push @{ $check{ $pool_region[$ri] } }, $client_ips[-1]
            if $pool_region[$ri] ne 'world' && @{ $check{ $pool_region[$ri] } // [] } < 4;
    }
    if ( $made % 100_000 == 0 ) {
        my $now = Time::HiRes::time();
        printf STDERR "gen_large_mmdb: %d networks inserted, up to %s, %.0f s\n", $made,
            int2ip($pos), $now - $t_start;
    }
}
my $t_inserted = Time::HiRes::time();

# ---- output -------------------------------------------------------------------------------

my $tmp = "$out.tmp.$$";
open my $fh, '>:raw', $tmp or die "gen_large_mmdb: cannot create $tmp: $!\n";
$tree->write_tree($fh);
close $fh or die "gen_large_mmdb: cannot write $tmp: $!\n";
rename $tmp, $out or do { unlink $tmp; die "gen_large_mmdb: cannot rename to $out: $!\n" };
my $t_written = Time::HiRes::time();

# clients: shuffled (Fisher-Yates) so consecutive requests hit unrelated networks and regions
for ( my $i = $#client_ips; $i > 0; $i-- ) {
    my $j = int( rand( $i + 1 ) );
    @client_ips[ $i, $j ] = @client_ips[ $j, $i ];
}
$tmp = "$clients_out.tmp.$$";
open $fh, '>', $tmp or die "gen_large_mmdb: cannot create $tmp: $!\n";
print {$fh} "$_\n" for @client_ips;
close $fh or die "gen_large_mmdb: cannot write $tmp: $!\n";
rename $tmp, $clients_out or do { unlink $tmp; die "gen_large_mmdb: cannot rename to $clients_out: $!\n" };

$tmp = "$clients_out.regions.tmp.$$";
open $fh, '>', $tmp or die "gen_large_mmdb: cannot create $tmp: $!\n";
for my $r (@regions) {
    print {$fh} "$_ $r->[0]\n" for @{ $check{ $r->[0] } // [] };
}
close $fh or die "gen_large_mmdb: cannot write $tmp: $!\n";
rename $tmp, "$clients_out.regions" or die "gen_large_mmdb: cannot rename to $clients_out.regions: $!\n";

my $rss = '?';
if ( open my $st, '<', '/proc/self/status' ) {
    while (<$st>) { $rss = $1 if /^VmHWM:\s+(\d+ kB)/ }
}
printf STDERR "gen_large_mmdb: %d networks (last ends below %s), %d distinct records, %d clients "
    . "(%s); insert %.0f s, write %.0f s, peak RSS %s; %s (%d bytes)\n",
    $made, int2ip($pos), scalar(@pool), scalar(@client_ips),
    join( ', ', map {"$_ $per_region{$_}"} sort keys %per_region ),
    $t_inserted - $t_start, $t_written - $t_inserted, $rss, $out, -s $out;

using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.Options;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.TestGrains;

namespace OrleansMeta.Cluster.Tests;

/// <summary>A silo behind a port mapping (NAT, a container's published port, a proxy): it listens for its peers on
/// Meta:Cluster:SiloListenEndpoint and advertises Meta:Cluster:SiloEndpoint, which peers use.</summary>
public sealed class SiloListenEndpointTests
{
    [Fact]
    public async Task A_silo_serves_peers_on_its_listen_endpoint_while_membership_records_the_advertised_one()
    {
        await using var cluster = new TestCluster("listen-endpoint");
        var listenPort = Ports.Free();
        await using var mapping = new TcpProxy("127.0.0.1", listenPort);
        var plain = await cluster.StartInProcessSiloAsync();
        var mapped = await cluster.StartInProcessSiloAsync(
            new Dictionary<string, string> { ["Meta:Cluster:SiloListenEndpoint"] = $"http://127.0.0.1:{listenPort}" }, siloPort: mapping.Port);

        // A third silo: two silos never vote each other dead (docs/membership.md), so the last step needs two voters.
        await cluster.StartInProcessSiloAsync();

        // Agreement compares the endpoints membership records with each silo's advertised one (the mapping's port).
        await cluster.WaitForAgreementAsync();
        Assert.Equal($"http://127.0.0.1:{mapping.Port}", mapped.SiloEndpoint);

        // The peer routes answer on the listen port, naming the advertised endpoint.
        using var http = new HttpClient();
        using var probe = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{listenPort}/silo/v1/probe")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        probe.Headers.Add(SiloHttpClient.SecretHeader, cluster.Secret);
        using var answer = await http.SendAsync(probe);
        answer.EnsureSuccessStatusCode();
        Assert.Equal(mapped.SiloEndpoint, (await answer.Content.ReadFromJsonAsync<ProbeResponse>())!.Endpoint);

        // Grain calls forwarded to the mapped silo go through the advertised endpoint.
        var keys = Enumerable.Range(0, 20).Select(i => $"acct-{i}").ToList();
        foreach (var key in keys)
        {
            await plain.Grains.GetGrain<IAccountGrain>(key).DepositAsync(1, $"op-{key}");
        }

        var placements = await Task.WhenAll(keys.Select(k => plain.Grains.GetGrain<IAccountGrain>(k).WhereAsync()));
        Assert.Contains(placements, p => p.Silo.StartsWith(mapped.SiloEndpoint, StringComparison.Ordinal));

        // Peers know only the advertised endpoint: without the mapping the silo is unreachable, and the two silos that
        // reach each other declare it dead.
        mapping.Cut();
        await Eventually.Until(async () => (await plain.GetClusterAsync()).Silos.Single(s => s.Endpoint == mapped.SiloEndpoint).Status == "dead",
            "the silo behind the cut mapping is declared dead", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Peer_connections_leave_from_the_outbound_address()
    {
        await using var cluster = new TestCluster("outbound-address");
        var listenPort = Ports.Free();
        await using var mapping = new TcpProxy("127.0.0.1", listenPort);
        var silo = await cluster.StartInProcessSiloAsync(
            new Dictionary<string, string> { ["Meta:Cluster:SiloListenEndpoint"] = $"http://127.0.0.1:{listenPort}" }, siloPort: mapping.Port);
        var target = new SiloAddress(silo.SiloEndpoint, 1);
        using var fromSeven = new SiloHttpClient(Options.Create(new ClusterOptions { SiloOutboundAddress = "127.0.0.7", ClusterSecret = cluster.Secret }));
        using var fromDefault = new SiloHttpClient(Options.Create(new ClusterOptions { ClusterSecret = cluster.Secret }));

        // The mapping drops connections from 127.0.0.7 only: a client bound there is refused, another is not.
        mapping.Cut(IPAddress.Parse("127.0.0.7"));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => ProbeAsync(fromSeven, target));
        (await ProbeAsync(fromDefault, target)).EnsureSuccessStatusCode();

        mapping.Heal();
        (await ProbeAsync(fromSeven, target)).EnsureSuccessStatusCode();
    }

    private static async Task<HttpResponseMessage> ProbeAsync(SiloHttpClient client, SiloAddress target)
    {
        using var probe = new HttpRequestMessage(HttpMethod.Get, "/silo/v1/probe");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await client.SendAsync(target, probe, null, timeout.Token);
    }
}

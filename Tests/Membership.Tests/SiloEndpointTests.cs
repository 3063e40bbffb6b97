using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Membership.Tests.Infrastructure;
using OrleansMeta.Runtime.Cluster;
using Xunit.Abstractions;

namespace OrleansMeta.Membership.Tests;

/// <summary>The membership routes answer only members, only on the silo port, and over HTTP/2.</summary>
public sealed class SiloEndpointTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_probe_through_the_silo_client_is_answered_over_http2_by_the_probed_incarnation()
    {
        await using var silo = await TestSilo.StartAsync(TestPostgres.NewClusterId("probe"), output, "probed");
        var client = silo.Services.GetRequiredService<SiloHttpClient>();

        using var request = new HttpRequestMessage(HttpMethod.Get, "/silo/v1/probe");
        using var response = await client.SendAsync(silo.Self, request, null, CancellationToken.None);

        response.EnsureSuccessStatusCode();
        var answer = await response.Content.ReadFromJsonAsync<ProbeResponse>();
        Assert.Equal(new ProbeResponse(silo.Self.Endpoint, silo.Self.Generation, "Active", "HTTP/2"), answer);
        Assert.Equal(HttpVersion.Version20, response.Version);
    }

    [Fact]
    public async Task A_request_without_the_cluster_secret_is_refused_with_401()
    {
        await using var silo = await TestSilo.StartAsync(TestPostgres.NewClusterId("no-secret"), output, "guarded");
        using var http = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

        using var probe = await http.GetAsync(new Uri($"{silo.Endpoint}/silo/v1/probe"));
        using var notice = await http.PostAsJsonAsync(new Uri($"{silo.Endpoint}/silo/v1/membership"), new MembershipChangedNotice(99));

        Assert.Equal(HttpStatusCode.Unauthorized, probe.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, notice.StatusCode);
    }

    [Fact]
    public async Task A_request_on_another_port_is_answered_404_even_with_the_secret()
    {
        var publicPort = TestSilo.FreePort();
        await using var silo = await TestSilo.StartAsync(TestPostgres.NewClusterId("wrong-port"), output, "two-ports", publicPort: publicPort);
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"http://127.0.0.1:{publicPort}/silo/v1/probe"));
        request.Headers.Add(SiloHttpClient.SecretHeader, TestSilo.Secret);

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}

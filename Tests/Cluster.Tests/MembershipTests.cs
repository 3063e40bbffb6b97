using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using OrleansMeta.Cluster.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Messaging;
using OrleansMeta.TestGrains;
using Xunit.Abstractions;

namespace OrleansMeta.Cluster.Tests;

public sealed class MembershipTests(ITestOutputHelper output)
{
    [Fact]
    public async Task With_default_settings_a_silo_killed_with_sigkill_is_dead_in_every_view_within_ten_seconds()
    {
        await using var cluster = new TestCluster("default-timing", TestCluster.Defaults);
        var silos = new List<ProcessSilo>();
        for (var i = 0; i < 3; i++)
        {
            silos.Add(await cluster.StartProcessSiloAsync());
        }

        await cluster.WaitForAgreementAsync();
        var victim = silos[1];
        var watch = Stopwatch.StartNew();
        victim.Kill();
        await Eventually.Until(async () =>
        {
            var views = await Task.WhenAll(new[] { silos[0], silos[2] }.Select(s => s.GetClusterAsync()));
            return views.All(v => v.Silos.Single(s => s.Endpoint == victim.SiloEndpoint).Status == "dead");
        }, "every survivor sees the killed silo dead", TimeSpan.FromSeconds(30));
        var elapsed = watch.Elapsed;
        output.WriteLine($"kill -9 to dead in every view with default settings: {elapsed.TotalSeconds:0.00} s");

        // The one timing bound the design promises; measured against a 30 s wait so a slow machine fails clearly.
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"detection took {elapsed.TotalSeconds:0.0} s; the target is under 10 s");
    }

    [Fact]
    public async Task A_silo_declared_dead_that_comes_back_joins_as_a_new_generation()
    {
        await using var cluster = new TestCluster("comeback");
        var silos = new List<ProcessSilo>();
        for (var i = 0; i < 3; i++)
        {
            silos.Add(await cluster.StartProcessSiloAsync());
        }

        await cluster.WaitForAgreementAsync();
        var victim = silos[2];
        var before = (await silos[0].GetClusterAsync()).Silos.Single(s => s.Endpoint == victim.SiloEndpoint);
        victim.Kill();
        await Eventually.Until(async () => (await silos[0].GetClusterAsync()).Silos.Single(s => s.Endpoint == victim.SiloEndpoint).Status == "dead",
            "the killed silo is declared dead", TimeSpan.FromSeconds(30));

        var back = await cluster.StartProcessSiloAsync(victim.PublicPort, victim.SiloPort);
        await cluster.WaitForAgreementAsync();
        var rows = (await silos[0].GetClusterAsync()).Silos.Where(s => s.Endpoint == back.SiloEndpoint).OrderBy(s => s.Generation).ToList();
        Assert.Equal(2, rows.Count);
        Assert.Equal((before.Generation, "dead"), (rows[0].Generation, rows[0].Status));
        Assert.True(rows[1].Generation > before.Generation);
        Assert.Equal("active", rows[1].Status);
    }

    [Fact]
    public async Task Silo_to_silo_calls_without_the_cluster_secret_are_refused()
    {
        await using var cluster = new TestCluster("secret");
        var silo = await cluster.StartInProcessSiloAsync();
        await cluster.WaitForAgreementAsync();

        using var http = new HttpClient(new SocketsHttpHandler()) { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var call = new RemoteCall("account/x", "GetAsync()", [], []);
        var anonymous = await http.PostAsJsonAsync($"{silo.SiloEndpoint}/silo/v1/calls", call);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        using var wrongSecret = new HttpRequestMessage(HttpMethod.Post, $"{silo.SiloEndpoint}/silo/v1/calls")
        {
            Content = JsonContent.Create(call),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        wrongSecret.Headers.Add("X-Meta-Cluster-Secret", "not-the-secret-of-this-cluster");
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(wrongSecret)).StatusCode);

        // The public port does not serve silo routes at all.
        Assert.Equal(HttpStatusCode.NotFound, (await silo.Http.PostAsJsonAsync("/silo/v1/calls", call)).StatusCode);
    }

    [Fact]
    public async Task A_silo_that_is_not_leaving_never_says_it_released_a_grain_and_a_malformed_grain_id_is_refused()
    {
        await using var cluster = new TestCluster("released");
        var silo = await cluster.StartInProcessSiloAsync();
        await cluster.WaitForAgreementAsync();
        await silo.Grains.GetGrain<IAccountGrain>("held").DepositAsync(1, "held-1");
        var self = silo.Services.GetRequiredService<IClusterMembership>().Self!;

        using var http = new HttpClient(new SocketsHttpHandler()) { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        async Task<HttpResponseMessage> AskAsync(string grain, SiloAddress? asker = null)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"{silo.SiloEndpoint}/silo/v1/released")
            {
                Content = JsonContent.Create(new ReleaseQuery(grain, asker?.Endpoint, asker?.Generation)),
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            request.Headers.Add("X-Meta-Cluster-Secret", cluster.Secret);
            return await http.SendAsync(request);
        }

        // Active, it may activate the grain at any time: not released, whether it holds an activation or not, to a
        // question that names no asker or one that is not an active silo in its view.
        foreach (var grain in new[] { "account/held", "account/never-called" })
        {
            foreach (var asker in new SiloAddress?[] { null, new("http://127.0.0.1:1", 1) })
            {
                using var answer = await AskAsync(grain, asker);
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
                Assert.Equal(new ReleaseResponse(self.Endpoint, self.Generation, Released: false, AnswersJoins: true), await answer.Content.ReadFromJsonAsync<ReleaseResponse>());
            }
        }

        using var malformed = await AskAsync("no-slash");
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        Assert.Contains("no-slash", await malformed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}

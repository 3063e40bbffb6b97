using System.Net.Http.Json;
using Microsoft.Extensions.Configuration;
using OrleansMeta.Contracts;
using OrleansMeta.Silo.Hosting;
using OrleansMeta.Silo.Tests.Infrastructure;

namespace OrleansMeta.Silo.Tests;

/// <summary>The URL a silo advertises to clients (<c>Meta:AdvertisedUrl</c>), which the coordinator lookup answers.</summary>
public sealed class AdvertisedUrlTests
{
    [Theory]
    [InlineData(null, "http://10.0.0.5:5080", "http://10.0.0.5:5080/")]
    [InlineData(null, "http://127.0.0.1:5080;http://0.0.0.0:6000", "http://127.0.0.1:5080/")]
    [InlineData("https://meta-0.example.com/api/", "http://0.0.0.0:5080", "https://meta-0.example.com/api/")]
    [InlineData("http://localhost:5080", "http://+:5080", "http://localhost:5080/")]
    public void The_advertised_url_is_the_setting_or_else_the_first_public_url(string? advertised, string urls, string expected)
    {
        var (url, problem) = SiloListeners.AdvertisedUrl(advertised, Configuration(urls));

        Assert.Null(problem);
        Assert.Equal(expected, url!.AbsoluteUri);
    }

    [Theory]
    [InlineData(null, "http://0.0.0.0:5080", "The first --urls value 'http://0.0.0.0:5080' listens on every address")]
    [InlineData(null, "http://+:5080", "The first --urls value 'http://+:5080'")]
    [InlineData(null, "http://*:5080", "The first --urls value 'http://*:5080'")]
    [InlineData(null, "http://[::]:5080", "The first --urls value 'http://[::]:5080'")]
    [InlineData("http://0.0.0.0:5080", "http://127.0.0.1:5080", "Meta:AdvertisedUrl 'http://0.0.0.0:5080'")]
    [InlineData("ftp://meta-0:5080", "http://127.0.0.1:5080", "Meta:AdvertisedUrl 'ftp://meta-0:5080'")]
    [InlineData("meta-0:5080", "http://127.0.0.1:5080", "Meta:AdvertisedUrl 'meta-0:5080'")]
    [InlineData("/relative", "http://127.0.0.1:5080", "Meta:AdvertisedUrl '/relative'")]
    [InlineData("http://meta-0:5080/?x=1", "http://127.0.0.1:5080", "Meta:AdvertisedUrl 'http://meta-0:5080/?x=1'")]
    public void An_unusable_advertised_url_is_refused_saying_what_to_set(string? advertised, string urls, string expected)
    {
        var (url, problem) = SiloListeners.AdvertisedUrl(advertised, Configuration(urls));

        Assert.Null(url);
        Assert.StartsWith(expected, problem, StringComparison.Ordinal);
        Assert.Contains("--Meta:AdvertisedUrl=http://", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_public_url_that_is_not_http_is_left_to_the_urls_check_rather_than_reported_twice()
    {
        var (url, problem) = SiloListeners.AdvertisedUrl(null, Configuration("ftp://nowhere"));

        Assert.Null(url);
        Assert.Null(problem);
    }

    [Fact]
    public async Task A_development_silo_names_itself_coordinator_at_its_advertised_url_and_serves_group_calls_without_the_forwarding_header()
    {
        await using var silo = await InProcessSilo.StartAsync("--Meta:AdvertisedUrl=http://meta-0.example:5080", "--Meta:Cluster:SiloName=dev-silo");

        var found = await silo.Http.GetFromJsonAsync<GroupCoordinatorResponse>("/v1/groups/g/coordinator");
        var fetch = await silo.Http.GetAsync("/v1/groups/g/offsets");

        Assert.Equal(("g", "http://meta-0.example:5080/", "dev-silo", 1L), (found!.GroupId, found.Url, found.SiloName, found.ViewVersion));
        Assert.True(fetch.IsSuccessStatusCode, await fetch.Content.ReadAsStringAsync());
        Assert.False(fetch.Headers.Contains(GroupHeaders.Coordinator));
    }

    private static IConfiguration Configuration(string urls)
        => new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["urls"] = urls }).Build();
}
